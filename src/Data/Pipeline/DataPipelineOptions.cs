using System.Security.Cryptography;
using System.Text;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// Everything a <see cref="DataPipeline"/> needs. Seed, Streams, ShuffleShards, ShuffleWindow and the
/// shard list define the sample order (see <see cref="DataPosition"/>); Readers, DecodeWorkers and the
/// queue sizes only change speed and memory, never the order.
/// </summary>
public sealed record DataPipelineOptions
{
    public required IReadOnlyList<ShardSource> Shards { get; init; }
    public required ISampleTransform Transform { get; init; }
    public int BatchSize { get; init; } = 16;
    public long Seed { get; init; }

    /// <summary>Shards read side by side and interleaved sample by sample (part of the order).</summary>
    public int Streams { get; init; } = 4;
    /// <summary>Permute the shard list every epoch (part of the order).</summary>
    public bool ShuffleShards { get; init; } = true;
    /// <summary>Shuffle samples inside windows of this many consecutive samples of a shard; 0 or 1 = off (part of the order).</summary>
    public int ShuffleWindow { get; init; } = 64;

    /// <summary>How many streams may read from storage at the same time.</summary>
    public int Readers { get; init; } = 2;
    public int DecodeWorkers { get; init; } = 2;
    /// <summary>Raw (encoded) samples buffered per stream.</summary>
    public int StreamQueue { get; init; } = 16;
    /// <summary>Samples between the sequencer and the batch assembler, i.e. the reorder window.</summary>
    public int DecodeQueue { get; init; } = 64;
    /// <summary>Finished batches waiting for the consumer (the prefetch depth).</summary>
    public int BatchQueue { get; init; } = 2;

    /// <summary>Stop after this many epochs (null: run until disposed).</summary>
    public int? MaxEpochs { get; init; }
    /// <summary>With MaxEpochs: drop a last, incomplete batch instead of emitting it.</summary>
    public bool DropLast { get; init; }

    public double MaxBadFraction { get; init; } = 0.01;
    /// <summary>The bad fraction is only judged after this many samples.</summary>
    public long MinSamplesForBadCheck { get; init; } = 100;

    public DataSlice? Slice { get; init; }

    public long MaxEncodedBytes { get; init; } = 256L << 20;
    public int OpenRetries { get; init; } = 2;
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    public HttpClient? Http { get; init; }

    /// <summary>A hash of everything that defines the order; a saved position only fits the same value.</summary>
    public string OrderFingerprint
    {
        get
        {
            string text = $"{ShardSpec.NamesHash(Shards)}|seed={Seed}|streams={Streams}|shuffle-shards={ShuffleShards}|window={Math.Max(1, ShuffleWindow)}";
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
        }
    }

    public void Validate()
    {
        if (Shards.Count == 0) throw new ArgumentException("data: no shards.");
        if (BatchSize < 1) throw new ArgumentException("data.batch-size must be at least 1.");
        if (Streams < 1) throw new ArgumentException("data.streams must be at least 1.");
        if (ShuffleWindow < 0) throw new ArgumentException("data.shuffle-window must be 0 or more.");
        if (Readers < 1) throw new ArgumentException("data.readers must be at least 1.");
        if (DecodeWorkers < 1) throw new ArgumentException("data.decode-workers must be at least 1.");
        if (StreamQueue < 1 || DecodeQueue < 1 || BatchQueue < 1) throw new ArgumentException("data queue capacities must be at least 1.");
        if (MaxEpochs is < 1) throw new ArgumentException("max epochs must be at least 1.");
        if (!(MaxBadFraction >= 0 && MaxBadFraction <= 1)) throw new ArgumentException("data.max-bad-fraction must be in [0, 1].");
        if (MinSamplesForBadCheck < 1) throw new ArgumentException("data.min-samples-for-bad-check must be at least 1.");
        Slice?.Validate();
    }
}
