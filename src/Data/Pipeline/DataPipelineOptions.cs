using LiteVae.Data.Order;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// Everything a <see cref="DataPipeline"/> needs. The index and the order decide which sample a number is
/// (and so what a batch holds); the transform and seed decide what each sample becomes; readers, decode
/// workers and prefetch only change speed and memory, never a batch's content.
/// </summary>
public sealed record DataPipelineOptions
{
    public required ShardIndex Index { get; init; }
    public required SampleOrder Order { get; init; }
    public required ISampleTransform Transform { get; init; }
    /// <summary>The largest span a request may ask for (batch buffers are this many images).</summary>
    public int MaxBatchSize { get; init; } = 16;

    /// <summary>Samples read from storage at the same time (file or HTTP reads).</summary>
    public int Readers { get; init; } = 2;
    /// <summary>Threads decoding and transforming images, each straight into its slot of a batch.</summary>
    public int DecodeWorkers { get; init; } = 2;
    /// <summary>Batches being filled at once, and finished batches waiting for the consumer (each).</summary>
    public int Prefetch { get; init; } = 2;

    public long MaxEncodedBytes { get; init; } = 256L << 20;
    public int OpenRetries { get; init; } = 2;
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    public HttpClient? Http { get; init; }

    public void Validate()
    {
        if (Order.SamplesPerEpoch == 0)
            throw new InvalidDataException(
                $"data: no samples: all {Index.Shards.Count} shard(s) are missing, unreadable or empty" +
                (Index.Problems.Count > 0 ? $" (e.g. {Index.Problems[0]})" : "") + ". Check data.source; 'litevae shards check <shards>' says what is wrong.");
        if (MaxBatchSize < 1) throw new ArgumentException("data.batch-size must be at least 1.");
        if (Readers < 1) throw new ArgumentException("data.readers must be at least 1.");
        if (DecodeWorkers < 1) throw new ArgumentException("data.decode-workers must be at least 1.");
        if (Prefetch < 1) throw new ArgumentException("data.prefetch-batches must be at least 1.");
    }
}
