namespace LiteVae.Actors.Protocol;

/// <summary>One sample of the training set in one epoch: the shard's index in the shard list and the
/// sample's ordinal inside that shard (0-based, in tar order).</summary>
public readonly record struct SampleId(int Epoch, int Shard, int Index);

/// <summary>
/// A set of non-negative integers as sorted, disjoint, non-adjacent half-open ranges
/// [Starts[i], Ends[i]). Sample indices consumed from a shard are nearly contiguous, so this stays small
/// on the wire and in checkpoints even for shards of thousands of samples.
/// </summary>
public sealed record IndexRanges(IReadOnlyList<int> Starts, IReadOnlyList<int> Ends)
{
    public static readonly IndexRanges Empty = new([], []);

    public static IndexRanges From(IEnumerable<int> indices)
    {
        var sorted = indices.Distinct().Order().ToArray();
        var starts = new List<int>();
        var ends = new List<int>();
        foreach (int i in sorted)
        {
            if (i < 0) throw new ArgumentOutOfRangeException(nameof(indices), i, "sample indices are non-negative");
            if (ends.Count > 0 && ends[^1] == i) ends[^1] = i + 1;
            else { starts.Add(i); ends.Add(i + 1); }
        }
        return new IndexRanges(starts, ends);
    }

    public int Count
    {
        get
        {
            int n = 0;
            for (int i = 0; i < Starts.Count; i++) n += Ends[i] - Starts[i];
            return n;
        }
    }

    public IEnumerable<int> Indices()
    {
        for (int r = 0; r < Starts.Count; r++)
            for (int i = Starts[r]; i < Ends[r]; i++)
                yield return i;
    }

    public bool Contains(int index)
    {
        int lo = 0, hi = Starts.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (index < Starts[mid]) hi = mid - 1;
            else if (index >= Ends[mid]) lo = mid + 1;
            else return true;
        }
        return false;
    }

    // Records compare lists by reference; ranges are values.
    public bool Equals(IndexRanges? other) =>
        other is not null && Starts.SequenceEqual(other.Starts) && Ends.SequenceEqual(other.Ends);

    public override int GetHashCode() => HashCode.Combine(Starts.Count, Count);
}
