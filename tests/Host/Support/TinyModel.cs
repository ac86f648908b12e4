using LiteVae.Data.Imaging;

namespace LiteVae.Host.Tests.Support;

/// <summary>The tiny autoencoder config and noise images the inference, interop and evaluation tests share.</summary>
internal static class TinyModel
{
    public const string Conf = """
        model {
          embed_dim = 4
          encoder { extractor_channels = 8, extractor_mult = [1, 2], extractor_resblocks = 1,
                    aggregate_channels = 8, aggregate_mult = [1, 2], aggregate_resblocks = 1 }
          decoder { channels = 8, channel_mult = [1, 1, 2, 2], num_res_blocks = 0 }
        }
        """;

    /// <summary>Writes random-pixel PNGs of <paramref name="width"/> x <paramref name="height"/> into <paramref name="folder"/>.</summary>
    public static void WriteNoisePngs(string folder, int width, int height, int seed, params string[] names)
    {
        var rng = new Random(seed);
        foreach (var name in names)
        {
            var img = RgbImage.Create(width, height);
            rng.NextBytes(img.Pixels);
            ImageFile.WritePng(Path.Combine(folder, name), img);
        }
    }
}
