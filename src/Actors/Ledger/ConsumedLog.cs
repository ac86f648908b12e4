using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Ledger;

/// <summary>
/// The trainer's record of which samples its weights have seen in each open epoch. It goes into every
/// checkpoint (as <see cref="ConsumedState"/>), so a resumed run re-reads exactly the samples it had not
/// trained on. Delivery is at-least-once (a re-leased shard can be read again while the old reader's batches
/// are still in flight), training is exactly-once: a batch that repeats a sample is dropped whole (see
/// <see cref="Repeats"/>) and counted in <see cref="Duplicates"/>; its other samples stay unconsumed, so the
/// coordinator's ledger re-leases them.
/// </summary>
public sealed class ConsumedLog
{
    private readonly SortedDictionary<(int Epoch, int Shard), SampleBits> _shards = new();

    public int FirstOpenEpoch { get; private set; }

    /// <summary>Samples delivered again after they were trained, dropped (cumulative over the run).</summary>
    public long Duplicates { get; private set; }

    /// <summary>How many of <paramref name="samples"/> were trained already (or belong to a closed epoch, or
    /// repeat within the batch). Records nothing.</summary>
    public int Repeats(IReadOnlyList<SampleId> samples)
    {
        int repeats = 0;
        var inBatch = new HashSet<SampleId>();
        foreach (var s in samples)
        {
            bool seen = s.Epoch < FirstOpenEpoch
                        || (_shards.TryGetValue((s.Epoch, s.Shard), out var bits) && bits.Contains(s.Index))
                        || !inBatch.Add(s);
            if (seen) repeats++;
        }
        return repeats;
    }

    /// <summary>Records the samples of a step the trainer trained on (none of them a repeat).</summary>
    public void Add(IEnumerable<SampleId> samples)
    {
        foreach (var s in samples)
        {
            if (!_shards.TryGetValue((s.Epoch, s.Shard), out var bits))
                _shards[(s.Epoch, s.Shard)] = bits = new SampleBits();
            bits.Add(s.Index);
        }
    }

    /// <summary>A batch with <paramref name="repeats"/> repeated samples was dropped.</summary>
    public void Dropped(int repeats) => Duplicates += repeats;

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
