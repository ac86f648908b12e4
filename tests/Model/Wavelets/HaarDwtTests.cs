using LiteVae.Model.Tests.Support;
using LiteVae.Model.Wavelets;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Wavelets;

public class HaarDwtTests
{
    private static Tensor RandomImages(long n, long c, long h, long w, int seed)
    {
        using var g = new Generator((ulong)seed);
        return rand([n, c, h, w], generator: g) * 2 - 1;
    }

    /// <summary>Spec 2.2's per-2x2-block formulas, evaluated element by element in double precision.</summary>
    private static double[,,,] NaiveLevel(double[,,,] x, bool paperOrder)
    {
        int n = x.GetLength(0), c = x.GetLength(1), h = x.GetLength(2) / 2, w = x.GetLength(3) / 2;
        var y = new double[n, 4 * c, h, w];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                    {
                        double a = x[b, ch, 2 * i, 2 * j], bb = x[b, ch, 2 * i, 2 * j + 1];
                        double cc = x[b, ch, 2 * i + 1, 2 * j], d = x[b, ch, 2 * i + 1, 2 * j + 1];
                        double ll = (a + bb + cc + d) / 2, b1 = (a - bb + cc - d) / 2, b2 = (a + bb - cc - d) / 2, hh = (a - bb - cc + d) / 2;
                        y[b, ch, i, j] = ll;
                        y[b, c + ch, i, j] = paperOrder ? b2 : b1;
                        y[b, 2 * c + ch, i, j] = paperOrder ? b1 : b2;
                        y[b, 3 * c + ch, i, j] = hh;
                    }
        return y;
    }

    private static double[,,,] ToArray(Tensor t)
    {
        var s = t.shape;
        var flat = t.to(float64).contiguous().data<double>().ToArray();
        var a = new double[s[0], s[1], s[2], s[3]];
        Buffer.BlockCopy(flat, 0, a, 0, flat.Length * sizeof(double));
        return a;
    }

    private static double[,,,] FirstChannels(double[,,,] y, int c)
    {
        var r = new double[y.GetLength(0), c, y.GetLength(2), y.GetLength(3)];
        for (int b = 0; b < y.GetLength(0); b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < y.GetLength(2); i++)
                    for (int j = 0; j < y.GetLength(3); j++)
                        r[b, ch, i, j] = y[b, ch, i, j];
        return r;
    }

    private static void AssertClose(double[,,,] expected, Tensor actual, double tol, string what)
    {
        var a = ToArray(actual);
        Assert.Equal(expected.Length, a.Length);
        double worst = 0;
        for (int b = 0; b < a.GetLength(0); b++)
            for (int ch = 0; ch < a.GetLength(1); ch++)
                for (int i = 0; i < a.GetLength(2); i++)
                    for (int j = 0; j < a.GetLength(3); j++)
                        worst = Math.Max(worst, Math.Abs(a[b, ch, i, j] - expected[b, ch, i, j]));
        Assert.True(worst <= tol, $"{what}: max error {worst:E3} > {tol:E1}");
    }

    [Theory]
    [InlineData(HaarConvention.Reference)]
    [InlineData(HaarConvention.Paper)]
    public void MatchesTheNaiveBlockFormulasAtEveryLevel(HaarConvention convention)
    {
        using var dwt = new HaarDwt(3, 3, convention);
        using var x = RandomImages(2, 3, 16, 24, 7);
        var levels = dwt.forward(x);
        var current = ToArray(x);
        for (int l = 0; l < 3; l++)
        {
            var expected = NaiveLevel(current, convention == HaarConvention.Paper);
            current = FirstChannels(expected, 3); // the next level transforms the unscaled LL band
            if (convention == HaarConvention.Paper)
            {
                double s = 1 << (l + 1);
                foreach (var idx in Indices(expected)) expected[idx.b, idx.c, idx.i, idx.j] /= s;
            }
            Assert.Equal(new long[] { 2, 12, 16 >> (l + 1), 24 >> (l + 1) }, levels[l].shape);
            AssertClose(expected, levels[l], 1e-6, $"level {l + 1}");
        }
        foreach (var t in levels) t.Dispose();
    }

    private static IEnumerable<(int b, int c, int i, int j)> Indices(double[,,,] a)
    {
        for (int b = 0; b < a.GetLength(0); b++)
            for (int c = 0; c < a.GetLength(1); c++)
                for (int i = 0; i < a.GetLength(2); i++)
                    for (int j = 0; j < a.GetLength(3); j++)
                        yield return (b, c, i, j);
    }

    [Theory]
    [InlineData(HaarConvention.Reference)]
    [InlineData(HaarConvention.Paper)]
    public void InverseRebuildsTheImageToFloatEps(HaarConvention convention)
    {
        using var dwt = new HaarDwt(3, 3, convention);
        using var x = RandomImages(2, 3, 32, 40, 11);
        var levels = dwt.forward(x);
        using var back = dwt.Inverse(levels);
        Assert.Equal(x.shape, back.shape);
        // Each level is two exact-in-binary halvings of sums; three levels stay within a few ulps of 1.
        Assert.True(TensorAssert.MaxAbsDiff(x, back) < 1e-6);
        foreach (var t in levels) t.Dispose();
    }

    [Fact]
    public void TransformPreservesEnergyAtEachLevel()
    {
        // The reference Haar (taps 1/2 on 2x2 blocks) is orthonormal: level 1 has the image's energy.
        using var dwt = new HaarDwt(3, 1);
        using var x = RandomImages(1, 3, 8, 8, 3);
        var levels = dwt.forward(x);
        double e0 = x.square().sum().item<float>(), e1 = levels[0].square().sum().item<float>();
        Assert.Equal(e0, e1, 3);
        levels[0].Dispose();
    }

    [Fact]
    public void RunsInFp32AndReturnsTheRequestedDtype()
    {
        using var dwt = new HaarDwt(3, 3);
        using var x = RandomImages(1, 3, 16, 16, 5);
        var f32 = dwt.Forward(x, float32);
        var bf = dwt.Forward(x, bfloat16);
        for (int l = 0; l < 3; l++)
        {
            Assert.Equal(ScalarType.BFloat16, bf[l].dtype);
            // fp32 result rounded once to bf16: computing in bf16 would round at every level.
            using var rounded = f32[l].to(bfloat16);
            Assert.True(rounded.equal(bf[l]).all().item<bool>(), $"level {l + 1} is not the fp32 result rounded to bf16");
        }
        // A module converted to bf16 keeps computing in fp32 (its filters are cast back).
        dwt.to(bfloat16);
        var again = dwt.Forward(x, float32);
        for (int l = 0; l < 3; l++)
            Assert.True(again[l].equal(f32[l]).all().item<bool>());
        foreach (var t in f32.Concat(bf).Concat(again)) t.Dispose();
    }

    [Fact]
    public void NoGradientFlowsThroughTheTransform()
    {
        using var dwt = new HaarDwt(3, 2);
        using var x = RandomImages(1, 3, 8, 8, 1).requires_grad_();
        var levels = dwt.forward(x);
        Assert.All(levels, l => Assert.False(l.requires_grad));
        foreach (var t in levels) t.Dispose();
    }

    [Fact]
    public void SizesThatAreNotMultiplesOfTwoToTheLevelsAreRefused()
    {
        using var dwt = new HaarDwt(3, 3);
        using var x = zeros(1, 3, 32, 36);
        var e = Assert.Throws<ArgumentException>(() => dwt.forward(x));
        Assert.Contains("multiples of 8", e.Message);
        Assert.Contains("32 x 36", e.Message);
    }
}
