using System.Formats.Tar;
using LiteVae.Data.Config;
using LiteVae.Data.Order;
using LiteVae.Data.Shards;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;
using SkiaSharp;

namespace LiteVae.Actors.Tests.Synthetic;

/// <summary>
/// Real WebDataset tar shards for actor tests and benchmarks: sample i of shard s is a solid-colour PNG whose
/// colour names (s, i), so a trainer can check that every image it gets is intact after decoding, cropping and
/// crossing nodes in chunks. Every <c>badEvery</c>-th sample holds bytes that are not an image.
/// </summary>
public sealed class TestShards
{
    public TestShards(string dir, int[] sizes, int badEvery = 0, int imageSize = 24)
    {
        Directory.CreateDirectory(dir);
        Sizes = sizes;
        Paths = sizes.Select((n, s) => Path.Combine(dir, $"test-{s:D6}.tar")).ToList();
        for (int s = 0; s < sizes.Length; s++)
        {
            using var file = File.Create(Paths[s]);
            using var tar = new TarWriter(file, TarEntryFormat.Ustar);
            for (int i = 0; i < sizes[s]; i++)
            {
                bool bad = badEvery > 0 && i % badEvery == badEvery - 1;
                var entry = new UstarTarEntry(TarEntryType.RegularFile, $"{Key(s, i)}.png")
                {
                    DataStream = new MemoryStream(bad ? "not an image"u8.ToArray() : Png(imageSize, Value(s, i))),
                };
                tar.WriteEntry(entry);
            }
        }
    }

    public IReadOnlyList<int> Sizes { get; }
    public IReadOnlyList<string> Paths { get; }

    public static string Key(int shard, int index) => $"s{shard}-{index:D4}";

    /// <summary>The grey level of sample (shard, index): what every pixel of its image is.</summary>
    public static byte Value(int shard, int index) => (byte)(20 + (shard * 31 + index * 7) % 211);

    /// <summary>(shard, index) back from a key.</summary>
    public static (int Shard, int Index) Parse(string key)
    {
        int dash = key.IndexOf('-');
        return (int.Parse(key[1..dash]), int.Parse(key[(dash + 1)..]));
    }

    private static byte[] Png(int size, byte value)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(new SKColor(value, value, value));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>The data section of an experiment over these shards: 8 × 8 crops, <paramref name="batch"/> a batch.</summary>
    public DataConfig Data(int batch = 4, int decodeWorkers = 2) => new()
    {
        Source = Paths, Resolution = 8, BatchSize = batch, Seed = 42, Streams = 2, ShuffleWindow = 4, DecodeWorkers = decodeWorkers,
        MaxBadFraction = 0.5,
    };

    /// <summary>The run's sample order over these shards, as the Coordinator and every data node compute it.</summary>
    public SampleOrder Order(DataConfig data) => data.CreateOrder(data.LoadIndex(_ => { }), DataUse.Train);

    /// <summary>An experiment binder for actor tests: whatever the text, this data section and a tiny model (the
    /// synthetic engine never builds it).</summary>
    public static ExperimentBinder Binder(DataConfig data) => (_, _) => new ExperimentConfig(
        "test",
        new AutoencoderConfig(4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(8, 4, 3, [1, 1, 2, 2], 0, 0.0)),
        new NullDiscriminatorConfig(),
        data,
        null,
        new RunSettings(1000, 5, "cpu", null),
        new TrainerOptions(),
        new LossConfig(),
        PerceptualNet.None,
        new CheckpointSettings(10, 3, false),
        new EvalSettings(0, 0, false),
        "test = 1");
}
