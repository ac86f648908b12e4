using System.Text.Json;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Metrics;

/// <summary>tests/fixtures/metrics/expected.json and the integer-formula images of make_metric_fixtures.py.</summary>
internal static class MetricFixtureData
{
    public static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(MetricFixtures.Path("metrics", "expected.json"))).RootElement;

    /// <summary>A stored HWC uint8 image as a 1 x 3 x H x W uint8 tensor.</summary>
    public static Tensor StoredImage(string base64, int h, int w)
    {
        var bytes = Convert.FromBase64String(base64);
        using var hwc = tensor(bytes, [h, w, 3], ScalarType.Byte);
        return hwc.permute(2, 0, 1).unsqueeze(0).contiguous();
    }

    private static long LowBias32(long idx, uint seed)
    {
        uint x = unchecked((uint)idx + seed * 0x9E3779B9u);
        x ^= x >> 16; x = unchecked(x * 0x7FEB352Du);
        x ^= x >> 15; x = unchecked(x * 0x846CA68Bu);
        x ^= x >> 16;
        return x;
    }

    /// <summary>C x H x W as in formula_image().</summary>
    public static long[,,] FormulaImage(int h, int w)
    {
        var img = new long[3, h, w];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    img[c, y, x] = (x * 3 + y * 5 + c * 40 + ((x * y) % 17) * 4 + LowBias32(((long)c * h + y) * w + x, 11) % 16) % 256;
        return img;
    }

    public static long[,,] Distort(long[,,] img, string how)
    {
        int ch = img.GetLength(0), h = img.GetLength(1), w = img.GetLength(2);
        var r = new long[ch, h, w];
        for (int c = 0; c < ch; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    long idx = ((long)c * h + y) * w + x;
                    r[c, y, x] = how switch
                    {
                        "noise10" => Math.Clamp(img[c, y, x] + LowBias32(idx, 29) % 21 - 10, 0, 255),
                        "noise40" => Math.Clamp(img[c, y, x] + LowBias32(idx, 29) % 81 - 40, 0, 255),
                        "blur" => Box(img, c, y, x),
                        "same" => img[c, y, x],
                        _ => throw new ArgumentException(how),
                    };
                }
        return r;
    }

    private static long Box(long[,,] img, int c, int y, int x)
    {
        int h = img.GetLength(1), w = img.GetLength(2);
        long s = 0;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
                s += img[c, Math.Clamp(y + dy, 0, h - 1), Math.Clamp(x + dx, 0, w - 1)];
        return s / 9;
    }

    public static Tensor ToTensor(long[,,] img)
    {
        int ch = img.GetLength(0), h = img.GetLength(1), w = img.GetLength(2);
        var flat = new double[ch * h * w];
        Buffer.BlockCopy(img.Cast<long>().Select(v => (double)v).ToArray(), 0, flat, 0, flat.Length * 8);
        return tensor(flat, [1, ch, h, w]);
    }
}
