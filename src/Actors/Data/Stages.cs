using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>What a data node must produce: batches of <see cref="BatchSize"/> images of Height×Width.</summary>
public sealed record DataShape(int BatchSize, int Height, int Width)
{
    public int SampleBytes => 3 * Height * Width;
}

/// <summary>One encoded sample read from a shard (the image file's bytes).</summary>
public sealed record RawSample(SampleId Id, string Key, byte[] Encoded);

/// <summary>What to read: one leased shard, skipping samples already consumed or known bad.</summary>
public sealed record ShardReadRequest(int Epoch, int Shard, string Path, long Seed, IndexRanges Skip);

/// <summary>Filled by a reader as it goes: how many samples the shard holds and which were unreadable.</summary>
public sealed class ShardReadCounts
{
    private readonly List<int> _bad = [];
    private readonly List<string> _reasons = [];

    public int Total { get; set; }
    public IReadOnlyList<int> Bad => _bad;
    public IReadOnlyList<string> Reasons => _reasons;

    public void AddBad(int index, string reason)
    {
        lock (_bad) { _bad.Add(index); _reasons.Add(reason); }
    }
}

/// <summary>
/// The ShardReader stage: streams one shard's samples in order (the data pipeline's tar reader does the
/// work). Must set <see cref="ShardReadCounts.Total"/> once the shard end is reached, and may throw for a
/// shard that cannot be read at all (the reader actor then restarts; after that the lease is re-issued).
/// </summary>
public interface IShardReader
{
    IAsyncEnumerable<RawSample> ReadAsync(ShardReadRequest request, ShardReadCounts counts, CancellationToken ct);
}

/// <summary>
/// The DecodeAugment stage: decodes one sample and applies the training transform deterministically for
/// (seed, epoch, sample), writing 3×H×W uint8 planes into <paramref name="destination"/>. Thread-safe.
/// Returns null on success or the reason the sample is bad (it is then skipped and counted).
/// </summary>
public interface ISampleDecoder
{
    string? Decode(RawSample sample, long seed, Span<byte> destination);
}

/// <summary>The data pipeline of one experiment, as the Host builds it from the experiment config.</summary>
public sealed record DataPipelineParts(DataShape Shape, IShardReader Reader, ISampleDecoder Decoder);

/// <summary>Builds the data pipeline from the experiment HOCON the Coordinator hands out.</summary>
public delegate DataPipelineParts DataPipelineFactory(string experimentHocon);
