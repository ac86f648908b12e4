using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace LiteVae.Data.Shards;

/// <summary>
/// Every shard of a data source with its layout (how many samples, where each begins): what turns a sample
/// number into one read, and what the sample order is computed from. Built by scanning the shards' headers
/// once, in parallel; kept in memory for the process and, given a file, saved there and reused while every
/// shard's size and modification time are unchanged (a resumed run does not scan again).
/// </summary>
public sealed class ShardIndex
{
    private static readonly ConcurrentDictionary<string, ShardIndex> Built = new();

    private ShardIndex(IReadOnlyList<ShardSource> shards, IReadOnlyList<ShardLayout> layouts, IReadOnlyList<DataProblem> problems)
    {
        Shards = shards;
        Layouts = layouts;
        Problems = problems;
        Sizes = layouts.Select(l => l.Samples).ToArray();
        TotalSamples = Sizes.Sum(s => (long)s);
    }

    public IReadOnlyList<ShardSource> Shards { get; }
    public IReadOnlyList<ShardLayout> Layouts { get; }
    /// <summary>Samples per shard, in shard-list order.</summary>
    public IReadOnlyList<int> Sizes { get; }
    public long TotalSamples { get; }
    /// <summary>What scanning found wrong with the shards themselves (missing, cut short, damaged headers).</summary>
    public IReadOnlyList<DataProblem> Problems { get; }

    /// <summary>Sample <paramref name="index"/> of shard <paramref name="shard"/>, read at random.</summary>
    public RawSample Read(int shard, int index, ReadContext context) => Shards[shard].ReadAt(Layouts[shard], index, context);

    /// <summary>
    /// The index of <paramref name="shards"/>: from this process's memory, else from <paramref name="cacheFile"/>
    /// when it matches, else by scanning (<paramref name="workers"/> shards at a time; <paramref name="progress"/>
    /// gets shards done and total) and then saved to <paramref name="cacheFile"/>.
    /// </summary>
    public static ShardIndex Load(IReadOnlyList<ShardSource> shards, ReadContext context, int workers = 4, string? cacheFile = null,
        Action<int, int>? progress = null)
    {
        var stamps = shards.Select(s => s.Stamp()).ToArray();
        string key = Key(shards, stamps);
        if (Built.TryGetValue(key, out var known)) return known;
        var index = (cacheFile is null ? null : FromFile(cacheFile, shards, stamps)) ?? Scan(shards, context, workers, progress);
        if (cacheFile is not null) TryWrite(cacheFile, index, stamps);
        return Built.GetOrAdd(key, index);
    }

    private static ShardIndex Scan(IReadOnlyList<ShardSource> shards, ReadContext context, int workers, Action<int, int>? progress)
    {
        var layouts = new ShardLayout[shards.Count];
        var problems = new ConcurrentQueue<(int Shard, DataProblem Problem)>();
        int done = 0;
        Parallel.For(0, shards.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers), CancellationToken = context.Cancellation }, i =>
        {
            var mine = context with { Report = p => { problems.Enqueue((i, p)); context.Report(p); } };
            layouts[i] = shards[i].Scan(mine);
            progress?.Invoke(Interlocked.Increment(ref done), shards.Count);
        });
        return new ShardIndex(shards, layouts, problems.OrderBy(p => p.Shard).Select(p => p.Problem).ToList());
    }

    private static string Key(IReadOnlyList<ShardSource> shards, string?[] stamps)
    {
        var b = new StringBuilder();
        for (int i = 0; i < shards.Count; i++) b.Append(shards[i].Name).Append('\t').Append(stamps[i]).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(b.ToString())));
    }

    // The file: one entry per shard with its stamp; offsets as deltas (small numbers) to keep it compact.
    private sealed record FileEntry(string Name, string? Stamp, int Samples, long[]? Deltas, IReadOnlyList<FileProblem> Problems);
    private sealed record FileProblem(BadReason Reason, string? Key, string Detail);
    private sealed record FileBody(int Version, IReadOnlyList<FileEntry> Shards);
    private const int Version = 1;

    /// <summary>The index saved in <paramref name="path"/> when it fits <paramref name="shards"/> as they are now
    /// (same names, sizes and modification times); null otherwise.</summary>
    public static ShardIndex? FromFile(string path, IReadOnlyList<ShardSource> shards) =>
        FromFile(path, shards, shards.Select(s => s.Stamp()).ToArray());

    private static ShardIndex? FromFile(string path, IReadOnlyList<ShardSource> shards, string?[] stamps)
    {
        if (!File.Exists(path)) return null;
        FileBody? body;
        try { body = JsonSerializer.Deserialize<FileBody>(File.ReadAllText(path)); }
        catch (Exception e) when (e is JsonException or IOException) { return null; }
        if (body is null || body.Version != Version || body.Shards.Count != shards.Count) return null;
        var layouts = new ShardLayout[shards.Count];
        var problems = new List<DataProblem>();
        for (int i = 0; i < shards.Count; i++)
        {
            var e = body.Shards[i];
            if (e.Name != shards[i].Name || e.Stamp != stamps[i] || (e.Deltas is { } d && d.Length != e.Samples + 1)) return null;
            long[]? offsets = null;
            if (e.Deltas is { } deltas)
            {
                offsets = new long[deltas.Length];
                long at = 0;
                for (int k = 0; k < deltas.Length; k++) offsets[k] = at += deltas[k];
            }
            layouts[i] = new ShardLayout(e.Samples, offsets);
            problems.AddRange(e.Problems.Select(p => new DataProblem(p.Reason, e.Name, p.Key, p.Detail)));
        }
        return new ShardIndex(shards, layouts, problems);
    }

    private static void TryWrite(string path, ShardIndex index, string?[] stamps)
    {
        var entries = index.Shards.Select((s, i) =>
        {
            var layout = index.Layouts[i];
            long[]? deltas = layout.Offsets is { } o ? o.Select((v, k) => k == 0 ? v : v - o[k - 1]).ToArray() : null;
            var problems = index.Problems.Where(p => p.Shard == s.Name).Select(p => new FileProblem(p.Reason, p.Key, p.Detail)).ToList();
            return new FileEntry(s.Name, stamps[i], layout.Samples, deltas, problems);
        }).ToList();
        try
        {
            string temp = path + ".tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(new FileBody(Version, entries)));
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException)
        {
            // Only a cache: the next run scans again.
        }
    }
}
