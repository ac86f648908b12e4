using LiteVae.Data.Decoding;
using LiteVae.Data.Order;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Config;

/// <summary>What the data is used for: training (random rescale, shuffling, endless) or evaluation
/// (resize short side + centre crop, fixed order, one pass).</summary>
public enum DataUse
{
    Train,
    Eval,
}

/// <summary>
/// The <c>data { … }</c> section of an experiment config, validated. Host binds it from HOCON
/// (src/Host/Config/DataConfigBinder.cs; keys are the kebab-case forms of these names).
/// </summary>
public sealed record DataConfig
{
    /// <summary>Shard files, brace patterns, wildcard patterns, http(s) URLs or folders (see <see cref="ShardSpec"/>).</summary>
    public required IReadOnlyList<string> Source { get; init; }
    public int Resolution { get; init; } = 256;
    public int BatchSize { get; init; } = 16;
    public long Seed { get; init; }
    public RescaleOptions Rescale { get; init; } = new();
    public DecodeOptions Decode { get; init; } = new();

    public int Streams { get; init; } = 4;
    public bool ShuffleShards { get; init; } = true;
    public int ShuffleWindow { get; init; } = 64;
    public int Readers { get; init; } = 2;
    public int DecodeWorkers { get; init; } = 4;
    public int PrefetchBatches { get; init; } = 2;

    public double MaxBadFraction { get; init; } = 0.01;
    public long MinSamplesForBadCheck { get; init; } = 100;
    public int FolderShardSize { get; init; } = 1000;
    public int OpenRetries { get; init; } = 2;

    /// <summary>Checks every value; the message names the key (kebab-case, relative to the section).</summary>
    public void Validate()
    {
        if (Source.Count == 0) throw new ArgumentException("source: give at least one shard, pattern, URL or folder.");
        if (Resolution < 8 || Resolution % 8 != 0) throw new ArgumentException($"resolution = {Resolution}: must be a positive multiple of 8 (the VAE downsamples by 8).");
        if (BatchSize < 1) throw new ArgumentException($"batch-size = {BatchSize}: must be at least 1.");
        Rescale.Validate();
        Decode.Validate();
        if (Streams < 1) throw new ArgumentException($"streams = {Streams}: must be at least 1.");
        if (ShuffleWindow < 0) throw new ArgumentException($"shuffle-window = {ShuffleWindow}: must be 0 (off) or more.");
        if (Readers < 1) throw new ArgumentException($"readers = {Readers}: must be at least 1.");
        if (DecodeWorkers < 1) throw new ArgumentException($"decode-workers = {DecodeWorkers}: must be at least 1.");
        if (PrefetchBatches < 1) throw new ArgumentException($"prefetch-batches = {PrefetchBatches}: must be at least 1.");
        if (!(MaxBadFraction >= 0 && MaxBadFraction <= 1)) throw new ArgumentException($"max-bad-fraction = {MaxBadFraction}: must be in [0, 1].");
        if (MinSamplesForBadCheck < 1) throw new ArgumentException($"min-samples-for-bad-check = {MinSamplesForBadCheck}: must be at least 1.");
        if (FolderShardSize < 1) throw new ArgumentException($"folder-shard-size = {FolderShardSize}: must be at least 1.");
        if (OpenRetries < 0) throw new ArgumentException($"open-retries = {OpenRetries}: must be 0 or more.");
    }

    public ISampleTransform CreateTransform(DataUse use) => use == DataUse.Train
        ? new TrainTransform(Resolution, Rescale, Decode)
        : new EvalTransform(Resolution, Decode);

    /// <summary>The shards <see cref="Source"/> names, in order.</summary>
    public IReadOnlyList<ShardSource> ResolveShards() => ShardSpec.Resolve(Source, FolderShardSize);

    /// <summary>How shards are read: limits and retries from this config.</summary>
    public ReadContext ReadContext(Action<DataProblem> report, CancellationToken ct = default) => new()
    {
        Report = report,
        MaxEncodedBytes = Decode.MaxEncodedBytes,
        OpenRetries = OpenRetries,
        Cancellation = ct,
    };

    /// <summary>The shards with their layouts (see <see cref="ShardIndex.Load"/>); <paramref name="cacheFile"/>
    /// keeps it for the next start.</summary>
    public ShardIndex LoadIndex(Action<DataProblem> report, string? cacheFile = null, Action<int, int>? progress = null, CancellationToken ct = default) =>
        ShardIndex.Load(ResolveShards(), ReadContext(report, ct), Math.Max(Readers, 4), cacheFile, progress);

    /// <summary>
    /// The sample order: training uses the seed, streams and shuffling of this config; evaluation reads every
    /// shard once in list order, each front to back.
    /// </summary>
    public SampleOrder CreateOrder(ShardIndex index, DataUse use) =>
        new(index.Shards.Select(s => s.Name).ToList(), index.Sizes,
            use == DataUse.Train ? new OrderSettings(Seed, Streams, ShuffleShards, ShuffleWindow) : OrderSettings.InListOrder);

    /// <summary>Pipeline options for training or evaluation over <paramref name="index"/>.</summary>
    public DataPipelineOptions CreatePipelineOptions(ShardIndex index, DataUse use, int? decodeWorkers = null)
    {
        Validate();
        return new DataPipelineOptions
        {
            Index = index,
            Order = CreateOrder(index, use),
            Transform = CreateTransform(use),
            MaxBatchSize = BatchSize,
            Readers = Readers,
            DecodeWorkers = decodeWorkers ?? DecodeWorkers,
            Prefetch = PrefetchBatches,
            MaxEncodedBytes = Decode.MaxEncodedBytes,
            OpenRetries = OpenRetries,
        };
    }
}
