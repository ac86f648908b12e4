namespace LiteVae.Data.Shards;

/// <summary>What readers need besides the shard: limits, problem reporting, retry policy, cancellation.</summary>
public sealed record ReadContext
{
    public required Action<DataProblem> Report { get; init; }
    public long MaxEncodedBytes { get; init; } = 256L << 20;
    public long MaxMetadataBytes { get; init; } = 1L << 20;
    /// <summary>Extra attempts to open a shard (network hiccups); local files fail at once.</summary>
    public int OpenRetries { get; init; } = 2;
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    public HttpClient? Http { get; init; }
    public CancellationToken Cancellation { get; init; }
}

/// <summary>
/// Where a shard's samples are: how many, and for a tar shard the byte offset where each sample's first
/// entry begins (<see cref="Offsets"/>[i]; the last element is the end of the last sample), so any sample
/// is one read away. Null offsets: the shard reads a sample by its index directly (a folder slice).
/// </summary>
public sealed record ShardLayout(int Samples, long[]? Offsets)
{
    public static readonly ShardLayout Empty = new(0, null);

    public bool Equals(ShardLayout? o) =>
        o is not null && Samples == o.Samples && (Offsets ?? []).AsSpan().SequenceEqual(o.Offsets ?? []);

    public override int GetHashCode() => HashCode.Combine(Samples, Offsets?.Length);
}

/// <summary>
/// A unit of the data set: a WebDataset tar file or URL, or a slice of an image folder. Training and
/// evaluation read samples at random by index (<see cref="Scan"/> once, then <see cref="ReadAt"/>); checks
/// read a shard front to back (<see cref="Read"/>). Both number samples the same way.
/// </summary>
public abstract class ShardSource
{
    /// <summary>Stable name (path, URL or folder slice) used in problems, batches and the order fingerprint.</summary>
    public abstract string Name { get; }

    /// <summary>Every sample, front to back. Never throws for bad data: problems are reported through the
    /// context or attached to samples.</summary>
    public abstract IEnumerable<RawSample> Read(ReadContext context);

    /// <summary>Counts the samples and notes where each begins (headers only). A shard that cannot be read is
    /// reported and has no samples.</summary>
    public abstract ShardLayout Scan(ReadContext context);

    /// <summary>Sample <paramref name="index"/> (0 ≤ index &lt; layout.Samples). Never throws for bad data: a
    /// sample that cannot be read comes back with its <see cref="RawSample.Problem"/>.</summary>
    public abstract RawSample ReadAt(ShardLayout layout, int index, ReadContext context);

    /// <summary>Size and modification time of the file(s) behind the shard, to tell whether a saved
    /// layout still fits (null when unknown, e.g. a URL: then the name alone identifies it).</summary>
    public abstract string? Stamp();

    public override string ToString() => Name;
}
