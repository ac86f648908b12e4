using LiteVae.Data.Config;
using LiteVae.Data.Decoding;
using LiteVae.Data.Transforms;

namespace LiteVae.Host.Config;

/// <summary>
/// Binds the HOCON <c>data { … }</c> section to a validated <see cref="DataConfig"/>. Every error
/// names the file, the key and what is allowed; unknown keys are errors too (a typo must not be
/// silently ignored). Example:
/// <code>
/// data {
///   source = "samples/shards/train-{000000..000003}.tar"   # or a list, a folder, http(s) URLs
///   resolution = 128
///   batch-size = 8
///   decode-workers = 2
///   flip = true
///   rescale { distribution = log-uniform, max-ratio = 4.0 }
///   max-bad-fraction = 0.01
/// }
/// </code>
/// </summary>
public static class DataConfigBinder
{
    private static readonly string[] Keys =
    [
        "source", "resolution", "batch-size", "seed", "flip", "rescale", "decode", "streams", "shuffle-shards",
        "shuffle-window", "readers", "decode-workers", "prefetch-batches",
        "max-bad-fraction", "min-samples-for-bad-check", "folder-shard-size", "open-retries",
    ];
    private static readonly Dictionary<string, string> Retired = new()
    {
        ["stream-queue"] = "samples are read at random now, each straight into its batch; prefetch-batches bounds what is in flight.",
        ["decode-queue"] = "samples are read at random now, each straight into its batch; prefetch-batches bounds what is in flight.",
        ["batch-queue"] = "it is prefetch-batches now (batches being filled, and finished ones waiting, each).",
    };
    private static readonly string[] RescaleKeys = ["distribution", "max-ratio"];
    private static readonly string[] DecodeKeys = ["max-pixels", "max-file-bytes", "jpeg-scaled-decode", "jpeg-scale-margin"];

    public static DataConfig Bind(HoconFile file, string section = "data")
    {
        var d = file.Section(section);
        d.RejectUnknown(Keys, retired: Retired);
        var defaults = new DataConfig { Source = ["-"] };
        var rescaleDefaults = new RescaleOptions();
        var decodeDefaults = new DecodeOptions();

        var rescale = rescaleDefaults;
        if (d.Has("rescale"))
        {
            var r = d.Section("rescale");
            r.RejectUnknown(RescaleKeys, "rescale.");
            string distribution = r.Choice("distribution", ["log-uniform", "uniform", "fixed"], "log-uniform");
            rescale = new RescaleOptions
            {
                Distribution = RescaleOptions.ParseDistribution(distribution),
                MaxRatio = r.Double("max-ratio", rescaleDefaults.MaxRatio, min: 1.0, max: 1000),
            };
        }
        rescale = rescale with { Flip = d.Bool("flip", rescaleDefaults.Flip) };

        var decode = decodeDefaults;
        if (d.Has("decode"))
        {
            var c = d.Section("decode");
            c.RejectUnknown(DecodeKeys, "decode.");
            decode = new DecodeOptions
            {
                MaxPixels = c.Long("max-pixels", decodeDefaults.MaxPixels, min: 1),
                MaxEncodedBytes = c.Long("max-file-bytes", decodeDefaults.MaxEncodedBytes, min: 1),
                JpegScaledDecode = c.Bool("jpeg-scaled-decode", decodeDefaults.JpegScaledDecode),
                JpegScaleMargin = c.Double("jpeg-scale-margin", decodeDefaults.JpegScaleMargin, min: 1.0, max: 8.0),
            };
        }

        var config = new DataConfig
        {
            Source = Source(d),
            Resolution = d.Int("resolution", defaults.Resolution, min: 8, max: 8192),
            BatchSize = d.Int("batch-size", defaults.BatchSize, min: 1, max: 1 << 16),
            Seed = d.Long("seed", defaults.Seed),
            Rescale = rescale,
            Decode = decode,
            Streams = d.Int("streams", defaults.Streams, min: 1, max: 1024),
            ShuffleShards = d.Bool("shuffle-shards", defaults.ShuffleShards),
            ShuffleWindow = d.Int("shuffle-window", defaults.ShuffleWindow, min: 0, max: 1 << 20),
            Readers = d.Int("readers", defaults.Readers, min: 1, max: 1024),
            DecodeWorkers = d.Int("decode-workers", defaults.DecodeWorkers, min: 1, max: 1024),
            PrefetchBatches = d.Int("prefetch-batches", defaults.PrefetchBatches, min: 1, max: 1024),
            MaxBadFraction = d.Double("max-bad-fraction", defaults.MaxBadFraction, min: 0, max: 1),
            MinSamplesForBadCheck = d.Long("min-samples-for-bad-check", defaults.MinSamplesForBadCheck, min: 1),
            FolderShardSize = d.Int("folder-shard-size", defaults.FolderShardSize, min: 1),
            OpenRetries = d.Int("open-retries", defaults.OpenRetries, min: 0, max: 100),
        };
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ConfigException($"{d.Source}: {e.Message}");
        }
        return config;
    }

    /// <summary><c>source</c> is a string or a list of strings.</summary>
    private static IReadOnlyList<string> Source(HoconFile d)
    {
        if (!d.Has("source"))
            throw new ConfigException($"{d.Source}: required key 'source' is missing (shard files, a brace pattern such as " +
                                      "\"shards/train-{000000..000099}.tar\", http(s) URLs, or a folder of images).");
        var value = d.Raw.GetValue("source");
        IReadOnlyList<string> list = value.IsArray() ? d.StringList("source") : [d.String("source")];
        if (list.Count == 0 || list.Any(string.IsNullOrWhiteSpace))
            throw new ConfigException($"{d.Source}: key 'source' must name at least one shard, pattern, URL or folder, without empty entries.");
        return list;
    }
}
