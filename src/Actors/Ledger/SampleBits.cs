using System.Collections;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Ledger;

/// <summary>A growable set of sample indices of one shard (one bit each).</summary>
public sealed class SampleBits
{
    private BitArray _bits = new(64);

    public int Count { get; private set; }

    /// <summary>Adds <paramref name="index"/>; false if it was already there.</summary>
    public bool Add(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (index >= _bits.Length)
            _bits.Length = Math.Max(index + 1, _bits.Length * 2);
        if (_bits[index]) return false;
        _bits[index] = true;
        Count++;
        return true;
    }

    public bool Contains(int index) => index >= 0 && index < _bits.Length && _bits[index];

    public void AddRange(IEnumerable<int> indices)
    {
        foreach (int i in indices) Add(i);
    }

    /// <summary>True when every index in [0, total) is in this set or in <paramref name="other"/>.</summary>
    public bool CoversWith(SampleBits other, int total)
    {
        for (int i = 0; i < total; i++)
            if (!Contains(i) && !other.Contains(i))
                return false;
        return true;
    }

    /// <summary>How many indices in [0, total) are in neither set.</summary>
    public int MissingWith(SampleBits other, int total)
    {
        int n = 0;
        for (int i = 0; i < total; i++)
            if (!Contains(i) && !other.Contains(i))
                n++;
        return n;
    }

    public IEnumerable<int> Indices()
    {
        for (int i = 0; i < _bits.Length; i++)
            if (_bits[i]) yield return i;
    }

    public IndexRanges ToRanges() => IndexRanges.From(Indices());

    public static SampleBits From(IndexRanges ranges)
    {
        var b = new SampleBits();
        b.AddRange(ranges.Indices());
        return b;
    }

    public static SampleBits Union(SampleBits a, SampleBits b)
    {
        var u = new SampleBits();
        u.AddRange(a.Indices());
        u.AddRange(b.Indices());
        return u;
    }
}
