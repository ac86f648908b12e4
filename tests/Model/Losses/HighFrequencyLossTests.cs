using LiteVae.Model.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Losses;

public class HighFrequencyLossTests
{
    private static Tensor Random(long seed, params long[] shape)
    {
        using var g = new Generator((ulong)seed);
        return rand(shape, float64, generator: g) * 2 - 1;
    }

    /// <summary>Naive level-1 Haar detail coefficients from the spec's per-block formulas.</summary>
    private static List<double> NaiveDetails(double[,,,] x)
    {
        var r = new List<double>();
        int n = x.GetLength(0), c = x.GetLength(1), h = x.GetLength(2), w = x.GetLength(3);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y += 2)
                    for (int z = 0; z < w; z += 2)
                    {
                        double a = x[i, ch, y, z], b = x[i, ch, y, z + 1], cc = x[i, ch, y + 1, z], d = x[i, ch, y + 1, z + 1];
                        r.Add((a - b + cc - d) / 2);
                        r.Add((a + b - cc - d) / 2);
                        r.Add((a - b - cc + d) / 2);
                    }
        return r;
    }

    private static double[,,,] ToArray(Tensor t)
    {
        var s = t.shape;
        var data = t.to_type(float64).contiguous().data<double>().ToArray();
        var a = new double[s[0], s[1], s[2], s[3]];
        Buffer.BlockCopy(data, 0, a, 0, data.Length * 8);
        return a;
    }

    [Fact]
    public void WaveletLossIsCharbonnierOnTheLevel1DetailBands()
    {
        using var hf = new HighFrequencyLosses(charbonnierEps: 1e-3);
        using var x = Random(1, 2, 3, 8, 6);
        using var y = Random(2, 2, 3, 8, 6);
        var dx = NaiveDetails(ToArray(x));
        var dy = NaiveDetails(ToArray(y));
        double expected = dx.Zip(dy).Average(p => Math.Sqrt((p.First - p.Second) * (p.First - p.Second) + 1e-6));
        using var loss = hf.Wavelet(y, x);
        Assert.Equal(expected, loss.item<double>(), 12);
        // Identical images: only the eps floor remains.
        using var same = hf.Wavelet(x, x);
        Assert.Equal(1e-3, same.item<double>(), 12);
        // The LL band is not part of it: adding a constant changes nothing.
        using var shifted = x + 0.3;
        using var shiftLoss = hf.Wavelet(shifted, x);
        Assert.Equal(1e-3, shiftLoss.item<double>(), 9);
    }

    /// <summary>Naive blur with reflect indexing (…, 2, 1, [0, 1, 2, …], …) and a normalised 2-D Gaussian.</summary>
    private static double[,,,] NaiveHighPass(double[,,,] x, int k, double sigma)
    {
        int n = x.GetLength(0), c = x.GetLength(1), h = x.GetLength(2), w = x.GetLength(3), r = k / 2;
        var kern = new double[k, k];
        double sum = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                sum += kern[i, j] = Math.Exp(-((i - r) * (i - r) + (j - r) * (j - r)) / (2 * sigma * sigma));
        static int Reflect(int i, int size) => i < 0 ? -i : i >= size ? 2 * size - 2 - i : i;
        var o = new double[n, c, h, w];
        for (int a = 0; a < n; a++)
            for (int b = 0; b < c; b++)
                for (int y = 0; y < h; y++)
                    for (int z = 0; z < w; z++)
                    {
                        double blur = 0;
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++)
                                blur += kern[i, j] / sum * x[a, b, Reflect(y + i - r, h), Reflect(z + j - r, w)];
                        o[a, b, y, z] = x[a, b, y, z] - blur;
                    }
        return o;
    }

    [Fact]
    public void GaussianLossIsL1BetweenHighPassResiduals()
    {
        using var hf = new HighFrequencyLosses(gaussianKernel: 5, gaussianSigma: 1.0);
        using var x = Random(3, 2, 3, 9, 7);
        using var y = Random(4, 2, 3, 9, 7);
        var hx = NaiveHighPass(ToArray(x), 5, 1.0);
        var hy = NaiveHighPass(ToArray(y), 5, 1.0);
        double total = 0;
        foreach (var (a, b) in hx.Cast<double>().Zip(hy.Cast<double>())) total += Math.Abs(a - b);
        using var loss = hf.Gaussian(y, x);
        // 7 places: the blur kernel is stored in fp32 (as in training), the naive one is fp64.
        Assert.Equal(total / hx.Length, loss.item<double>(), 7);
    }

    [Fact]
    public void GaussianLossIsHighPass()
    {
        using var hf = new HighFrequencyLosses();
        // Two different constant images: no high frequencies at all, so no loss.
        using var a = full([1, 3, 16, 16], 0.7, float32);
        using var b = full([1, 3, 16, 16], -0.2, float32);
        using var constant = hf.Gaussian(a, b);
        Assert.Equal(0f, constant.item<float>(), 6);
        // A sharp image against its blurred version: clearly positive.
        using var sharp = Random(5, 1, 3, 16, 16).to_type(float32);
        using var blurred = sharp - hf.HighPass(sharp);
        using var loss = hf.Gaussian(blurred, sharp);
        Assert.True(loss.item<float>() > 0.1f, $"blurred vs sharp gave only {loss.item<float>()}");
    }

    [Fact]
    public void Bf16InputsAreComputedInFp32()
    {
        using var hf = new HighFrequencyLosses();
        using var x = Random(6, 1, 3, 8, 8).to_type(bfloat16);
        using var y = Random(7, 1, 3, 8, 8).to_type(bfloat16);
        using var w = hf.Wavelet(y, x);
        using var g = hf.Gaussian(y, x);
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.Equal(ScalarType.Float32, g.dtype);
    }
}
