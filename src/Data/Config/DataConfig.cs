using LiteVae.Data.Decoding;
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
    public int StreamQueue { get; init; } = 16;
    public int DecodeQueue { get; init; } = 64;
    public int BatchQueue { get; init; } = 2;

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
        if (StreamQueue < 1) throw new ArgumentException($"stream-queue = {StreamQueue}: must be at least 1.");
        if (DecodeQueue < 1) throw new ArgumentException($"decode-queue = {DecodeQueue}: must be at least 1.");
        if (BatchQueue < 1) throw new ArgumentException($"batch-queue = {BatchQueue}: must be at least 1.");
        if (!(MaxBadFraction >= 0 && MaxBadFraction <= 1)) throw new ArgumentException($"max-bad-fraction = {MaxBadFraction}: must be in [0, 1].");
        if (MinSamplesForBadCheck < 1) throw new ArgumentException($"min-samples-for-bad-check = {MinSamplesForBadCheck}: must be at least 1.");
        if (FolderShardSize < 1) throw new ArgumentException($"folder-shard-size = {FolderShardSize}: must be at least 1.");
        if (OpenRetries < 0) throw new ArgumentException($"open-retries = {OpenRetries}: must be 0 or more.");
    }

    public ISampleTransform CreateTransform(DataUse use) => use == DataUse.Train
        ? new TrainTransform(Resolution, Rescale, Decode)
        : new EvalTransform(Resolution, Decode);

    /// <summary>
    /// Pipeline options for training or evaluation. Evaluation reads every shard once in list order
    /// (one stream, no shuffling) and keeps the last incomplete batch.
    /// </summary>
    public DataPipelineOptions CreatePipelineOptions(DataUse use, DataSlice? slice = null)
    {
        Validate();
        var shards = ShardSpec.Resolve(Source, FolderShardSize);
        bool train = use == DataUse.Train;
        return new DataPipelineOptions
        {
            Shards = shards,
            Transform = CreateTransform(use),
            BatchSize = BatchSize,
            Seed = Seed,
            Streams = train ? Streams : 1,
            ShuffleShards = train && ShuffleShards,
            ShuffleWindow = train ? ShuffleWindow : 0,
            Readers = Readers,
            DecodeWorkers = DecodeWorkers,
            StreamQueue = StreamQueue,
            DecodeQueue = DecodeQueue,
            BatchQueue = BatchQueue,
            MaxEpochs = train ? null : 1,
            DropLast = false,
            MaxBadFraction = MaxBadFraction,
            MinSamplesForBadCheck = MinSamplesForBadCheck,
            MaxEncodedBytes = Decode.MaxEncodedBytes,
            OpenRetries = OpenRetries,
            Slice = slice,
        };
    }
}
