namespace LiteVae.Data.Pipeline;

/// <summary>
/// A run's account of the samples its steps went through: trained, skipped as bad (by reason, with the last
/// few for messages). It travels with every checkpoint, so its counts cover the whole run across restarts,
/// and it is what stops a run whose data is mostly bad: above <c>data.max-bad-fraction</c>, or a whole
/// epoch's worth of samples in a row without one readable image.
/// </summary>
public sealed class SampleAccount
{
    private const int Examples = 3;
    private readonly Dictionary<BadReason, long> _byReason = new();
    private readonly Queue<SkippedSample> _recent = new();

    public long Trained { get; private set; }
    public long Skipped { get; private set; }
    /// <summary>Skipped samples since the last trained one.</summary>
    public long SkippedInARow { get; private set; }
    public IReadOnlyDictionary<BadReason, long> ByReason => _byReason;
    public IReadOnlyCollection<SkippedSample> Recent => _recent;

    public void Add(int trained, IEnumerable<SkippedSample> skipped)
    {
        foreach (var s in skipped)
        {
            Skipped++;
            SkippedInARow++;
            _byReason[s.Reason] = _byReason.GetValueOrDefault(s.Reason) + 1;
            _recent.Enqueue(s);
            if (_recent.Count > Examples) _recent.Dequeue();
        }
        if (trained > 0) SkippedInARow = 0;
        Trained += trained;
    }

    /// <summary>Throws <see cref="DataQualityException"/> when, after at least <paramref name="minSamples"/> samples,
    /// the skipped share is above <paramref name="maxFraction"/>, or when <paramref name="samplesPerEpoch"/> samples in a
    /// row were skipped (no epoch will ever train again). <paramref name="shardName"/> names a shard in messages.</summary>
    public void Check(double maxFraction, long minSamples, long samplesPerEpoch, Func<int, string> shardName)
    {
        long total = Trained + Skipped;
        string Latest() => string.Join("; ", _recent.Select(s => $"{s.Reason.Name()}: shard {shardName(s.Shard)} key {s.Key ?? "?"}: {s.Detail}"));
        string Reasons() => string.Join(", ", _byReason.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key.Name()} {kv.Value}"));
        if (samplesPerEpoch > 0 && SkippedInARow >= samplesPerEpoch)
            throw new DataQualityException(
                $"data: {SkippedInARow} samples in a row (a whole epoch of {samplesPerEpoch}) without one readable image ({Reasons()}). " +
                $"Latest: {Latest()}. Check data.source with 'litevae shards check <shards>'.");
        if (Skipped == 0 || total < minSamples || (double)Skipped / total <= maxFraction) return;
        throw new DataQualityException(
            $"data: {Skipped} of {total} samples ({100.0 * Skipped / total:F1}%) are bad, above data.max-bad-fraction = {maxFraction}. " +
            $"Reasons: {Reasons()}. Latest: {Latest()}. Check the shards with 'litevae shards check <shards>', " +
            "remove or fix the bad files, or raise data.max-bad-fraction.");
    }

    /// <summary>The counts, for a checkpoint (the examples are not kept).</summary>
    public SampleCounts Counts => new(Trained, Skipped, SkippedInARow, _byReason.ToDictionary(kv => kv.Key.Name(), kv => kv.Value));

    public static SampleAccount From(SampleCounts counts)
    {
        var a = new SampleAccount { Trained = counts.Trained, Skipped = counts.Skipped, SkippedInARow = counts.SkippedInARow };
        foreach (var (name, n) in counts.ByReason)
            if (Enum.GetValues<BadReason>().FirstOrDefault(r => r.Name() == name) is var reason && reason.Name() == name)
                a._byReason[reason] = n;
        return a;
    }
}

/// <summary>The counts of a <see cref="SampleAccount"/> as saved with a checkpoint (reasons by their kebab-case name).</summary>
public sealed record SampleCounts(long Trained, long Skipped, long SkippedInARow, IReadOnlyDictionary<string, long> ByReason)
{
    public static readonly SampleCounts Empty = new(0, 0, 0, new Dictionary<string, long>());

    public bool Equals(SampleCounts? o) =>
        o is not null && Trained == o.Trained && Skipped == o.Skipped && SkippedInARow == o.SkippedInARow &&
        ByReason.OrderBy(kv => kv.Key).SequenceEqual(o.ByReason.OrderBy(kv => kv.Key));

    public override int GetHashCode() => HashCode.Combine(Trained, Skipped);
}

/// <summary>The data is probably wrong: too many bad samples, or none readable. The message says which and what to do.</summary>
public sealed class DataQualityException(string message) : Exception(message);
