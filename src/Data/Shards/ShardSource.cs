using LiteVae.Data.Pipeline;

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
/// A unit of the data set that is read front to back: a WebDataset tar file or URL, or a slice of an
/// image folder. Reading yields raw samples in a fixed order; <c>skip</c> samples are passed over
/// cheaply (headers only), which is how a resumed run seeks to its saved position.
/// </summary>
public abstract class ShardSource
{
    /// <summary>Stable name (path, URL or folder slice) used in problems, batches and the order fingerprint.</summary>
    public abstract string Name { get; }

    /// <summary>Samples from index <paramref name="skip"/> on. Never throws for bad data: problems are
    /// reported through the context or attached to samples.</summary>
    public abstract IEnumerable<RawSample> Read(long skip, ReadContext context);

    public override string ToString() => Name;
}
