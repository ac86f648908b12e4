using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Ledger;

/// <summary>
/// The trainer's record of which samples its weights have seen in each open epoch. It goes into every
/// checkpoint (as <see cref="ConsumedState"/>), so a resumed run re-reads exactly the samples it had not
/// trained on, and it counts a sample consumed twice within an epoch as a duplicate.
/// </summary>
public sealed class ConsumedLog
{
    private readonly SortedDictionary<(int Epoch, int Shard), SampleBits> _shards = new();

    public int FirstOpenEpoch { get; private set; }
    public long Duplicates { get; private set; }

    /// <summary>Records the samples of one step; returns how many of them were duplicates.</summary>
    public int Add(IEnumerable<SampleId> samples)
    {
        int dup = 0;
        foreach (var s in samples)
        {
            if (s.Epoch < FirstOpenEpoch) { dup++; continue; }   // its epoch was already complete
            if (!_shards.TryGetValue((s.Epoch, s.Shard), out var bits))
                _shards[(s.Epoch, s.Shard)] = bits = new SampleBits();
            if (!bits.Add(s.Index)) dup++;
        }
        Duplicates += dup;
        return dup;
    }

    /// <summary>Every sample of <paramref name="epoch"/> (and earlier) is accounted for: forget them.</summary>
    public void CloseThrough(int epoch)
    {
        if (epoch + 1 <= FirstOpenEpoch) return;
        FirstOpenEpoch = epoch + 1;
        foreach (var key in _shards.Keys.Where(k => k.Epoch <= epoch).ToList())
            _shards.Remove(key);
    }

    public ConsumedState ToState() =>
        new(FirstOpenEpoch, _shards.Select(kv => new ShardConsumption(kv.Key.Epoch, kv.Key.Shard, kv.Value.ToRanges())).ToList(), Duplicates);

    public static ConsumedLog FromState(ConsumedState state)
    {
        var log = new ConsumedLog { FirstOpenEpoch = state.FirstOpenEpoch, Duplicates = state.Duplicates };
        foreach (var s in state.Shards)
            log._shards[(s.Epoch, s.Shard)] = SampleBits.From(s.Consumed);
        return log;
    }
}
