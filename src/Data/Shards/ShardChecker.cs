using System.Collections.Concurrent;
using LiteVae.Data.Decoding;

namespace LiteVae.Data.Shards;

/// <summary>What <see cref="ShardChecker"/> found in one shard.</summary>
public sealed record ShardReport(string Shard, long Samples, long Good, IReadOnlyList<DataProblem> Problems)
{
    public long Bad => Samples - Good;
    /// <summary>The shard itself could not be read (missing, unreachable).</summary>
    public bool Unreadable => Problems.Any(p => p.Reason == BadReason.UnreadableShard && p.Key is null);
}

/// <summary>
/// Reads every sample of every shard and says which are bad and why, exactly as training would
/// judge them: the same tar reader, grouping and decoder (a full decode by default).
/// Shards are checked in parallel.
/// </summary>
public static class ShardChecker
{
    public static IReadOnlyList<ShardReport> Check(IReadOnlyList<ShardSource> shards, bool fullDecode, DecodeOptions decode,
                                                   int workers, Action<ShardReport>? onShard = null, CancellationToken ct = default)
    {
        var reports = new ConcurrentDictionary<int, ShardReport>();
        Parallel.For(0, shards.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers), CancellationToken = ct }, i =>
        {
            var report = CheckOne(shards[i], fullDecode, decode, ct);
            reports[i] = report;
            onShard?.Invoke(report);
        });
        return Enumerable.Range(0, shards.Count).Select(i => reports[i]).ToList();
    }

    public static ShardReport CheckOne(ShardSource shard, bool fullDecode, DecodeOptions decode, CancellationToken ct = default)
    {
        var problems = new List<DataProblem>();
        var context = new ReadContext { Report = problems.Add, MaxEncodedBytes = decode.MaxEncodedBytes, OpenRetries = 1, Cancellation = ct };
        long samples = 0, good = 0;
        var region = new RgbaRegion();
        foreach (var sample in shard.Read(context))
        {
            using (sample)
            {
                samples++;
                if (sample.Problem is { } known)
                {
                    problems.Add(known);
                    continue;
                }
                try
                {
                    using var image = EncodedImage.Open(sample.Image, decode);
                    if (fullDecode) image.DecodeStored(8, region);
                    good++;
                }
                catch (BadSampleException e)
                {
                    problems.Add(new DataProblem(e.Reason, shard.Name, sample.Key, e.Detail));
                }
            }
        }
        return new ShardReport(shard.Name, samples, good, problems);
    }
}
