using System.Collections.Concurrent;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// Counters of a data pipeline, safe to update from every stage: good samples, bad samples by reason,
/// shards that could not be read, and the most recent problems (with shard, key and detail) for logs
/// and reports. <see cref="Problem"/> fires once per problem, for log lines.
/// </summary>
public sealed class DataStats
{
    private const int RecentCapacity = 256;
    private long _good;
    private long _bad;
    private long _shardFailures;
    private long _escapedKeys;
    private readonly long[] _byReason = new long[Enum.GetValues<BadReason>().Length];
    private readonly ConcurrentQueue<DataProblem> _recent = new();

    /// <summary>Raised on the thread that found the problem; keep handlers cheap.</summary>
    public event Action<DataProblem>? Problem;

    public long Good => Interlocked.Read(ref _good);
    /// <summary>Bad samples (plus damaged tar regions, which usually cost a sample).</summary>
    public long Bad => Interlocked.Read(ref _bad);
    /// <summary>Shards skipped whole because they could not be opened or read.</summary>
    public long ShardFailures => Interlocked.Read(ref _shardFailures);
    /// <summary>Samples whose tar entry names were not UTF-8 (kept, with %XX in the key).</summary>
    public long EscapedKeys => Interlocked.Read(ref _escapedKeys);

    public double BadFraction
    {
        get
        {
            long good = Good, bad = Bad;
            return good + bad == 0 ? 0 : (double)bad / (good + bad);
        }
    }

    public long Count(BadReason reason) => Interlocked.Read(ref _byReason[(int)reason]);

    public void RecordGood() => Interlocked.Increment(ref _good);

    public void RecordEscapedKey() => Interlocked.Increment(ref _escapedKeys);

    public void Record(DataProblem problem)
    {
        Interlocked.Increment(ref _byReason[(int)problem.Reason]);
        if (problem.Reason == BadReason.UnreadableShard && problem.Key is null)
            Interlocked.Increment(ref _shardFailures);
        else
            Interlocked.Increment(ref _bad);
        _recent.Enqueue(problem);
        while (_recent.Count > RecentCapacity && _recent.TryDequeue(out _)) { }
        Problem?.Invoke(problem);
    }

    /// <summary>The most recent problems (up to 256), oldest first.</summary>
    public IReadOnlyList<DataProblem> RecentProblems => _recent.ToArray();

    public IReadOnlyDictionary<string, long> ByReason =>
        Enum.GetValues<BadReason>().Where(r => Count(r) > 0).ToDictionary(r => r.Name(), Count);

    public override string ToString()
    {
        var reasons = ByReason;
        return $"{Good} good, {Bad} bad" + (reasons.Count == 0 ? "" : $" ({string.Join(", ", reasons.Select(r => $"{r.Key} {r.Value}"))})") +
               (ShardFailures > 0 ? $", {ShardFailures} shards unreadable" : "");
    }
}

