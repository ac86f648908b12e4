using System.Formats.Tar;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Host.Config;
using LiteVae.Host.Tests.Support;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Tests.Evaluation;

/// <summary>A tiny LiteVAE with saved weights, and the bundled held-out shard read independently of `litevae eval`.</summary>
internal sealed class EvalTestKit : IDisposable
{
    public const string TinyConf = Support.TinyModel.Conf;

    public static string EvalShard => Path.Combine(RepoPaths.Root, "samples", "shards", "eval-000000.tar");

    public TempDir Dir { get; } = new();
    public string Conf { get; }
    public string Weights { get; }
    public LiteAutoencoder Model { get; }

    public EvalTestKit(int seed = 21)
    {
        Conf = Dir.File("tiny.conf");
        File.WriteAllText(Conf, TinyConf);
        manual_seed(seed);
        Model = new LiteAutoencoder(ModelConfigBinder.Bind(HoconFile.Load(Conf)));
        Model.eval();
        Weights = Dir.File("tiny.safetensors");
        Safetensors.Save(Weights, Model.state_dict());
    }

    /// <summary>The bundled held-out images as the eval transform makes them (key, planar 3 x R x R bytes), in shard order.</summary>
    public static List<(string Key, byte[] Pixels)> ReadShard(int resolution)
    {
        var data = new DataConfig { Source = [EvalShard], Resolution = resolution, BatchSize = 4, DecodeWorkers = 2 };
        var index = data.LoadIndex(_ => { });
        var pipeline = DataPipeline.Start(data.CreatePipelineOptions(index, DataUse.Eval));
        var images = new List<(string, byte[])>();
        try
        {
            foreach (var batch in pipeline.ReadSpansAsync(0, 4, index.TotalSamples).ToBlockingEnumerable())
                using (batch)
                    for (int i = 0; i < batch.Count; i++)
                        images.Add((batch.Samples[i].Key, batch.Sample(i).ToArray()));
        }
        finally
        {
            pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return images;
    }

    /// <summary>The model's posterior-mode reconstruction of uint8 N x 3 x H x W images, computed directly (one batch).</summary>
    public Tensor Reconstruct(Tensor originals)
    {
        using var _ = no_grad();
        using var nhwc = originals.permute(0, 2, 3, 1).contiguous();
        using var x = PixelConversion.ToModelInput(nhwc);
        using var posterior = Model.Encode(x);
        using var decoded = Model.Decode(posterior.Mean);
        using var pixels = PixelConversion.ToPixels(decoded);
        return pixels.permute(0, 3, 1, 2).contiguous();
    }

    public static Tensor Stack(IEnumerable<byte[]> images, int resolution)
    {
        var list = images.ToList();
        var all = list.SelectMany(b => b).ToArray();
        return tensor(all, [list.Count, 3, resolution, resolution]);
    }

    /// <summary>A tar holding only text entries: a shard without a single image.</summary>
    public string TarWithoutImages()
    {
        string path = Dir.File("no-images.tar");
        using var stream = File.Create(path);
        using var writer = new TarWriter(stream);
        var entry = new PaxTarEntry(TarEntryType.RegularFile, "a.txt") { DataStream = new MemoryStream("caption"u8.ToArray()) };
        writer.WriteEntry(entry);
        return path;
    }

    public void Dispose()
    {
        Model.Dispose();
        Dir.Dispose();
    }
}
