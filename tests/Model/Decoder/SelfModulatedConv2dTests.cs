using LiteVae.Model.Analysis;
using LiteVae.Model.Decoder;
using LiteVae.Model.Tests.Support;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Decoder;

public class SelfModulatedConv2dTests
{
    /// <summary>
    /// Spec 4.1 Eq 3 / 4.2 closed form, evaluated per sample and per output pixel in double precision:
    /// y[n,o,p,q] = b[o] + gain * sum_{i,u,v} x[n,i,p+u-r,q+v-r] * s_i w[o,i,u,v] / sqrt(sum_{i,u,v} (s_i w[o,i,u,v])^2).
    /// </summary>
    private static double[] Naive(float[] x, long[] xs, float[] w, long[] ws, float[] bias, float[] s, float gain)
    {
        long n = xs[0], ci = xs[1], h = xs[2], wd = xs[3], co = ws[0], k = ws[2], r = k / 2;
        var norm = new double[co];
        for (long o = 0; o < co; o++)
        {
            double sum = 0;
            for (long i = 0; i < ci; i++)
                for (long u = 0; u < k; u++)
                    for (long v = 0; v < k; v++)
                    {
                        double m = s[i] * w[((o * ci + i) * k + u) * k + v];
                        sum += m * m;
                    }
            norm[o] = Math.Sqrt(sum);
        }
        var y = new double[n * co * h * wd];
        for (long b = 0; b < n; b++)
            for (long o = 0; o < co; o++)
                for (long p = 0; p < h; p++)
                    for (long q = 0; q < wd; q++)
                    {
                        double acc = 0;
                        for (long i = 0; i < ci; i++)
                            for (long u = 0; u < k; u++)
                                for (long v = 0; v < k; v++)
                                {
                                    long pp = p + u - r, qq = q + v - r;
                                    if (pp < 0 || pp >= h || qq < 0 || qq >= wd) continue;
                                    acc += x[((b * ci + i) * h + pp) * wd + qq] * s[i] * w[((o * ci + i) * k + u) * k + v] / norm[o];
                                }
                        y[((b * co + o) * h + p) * wd + q] = bias[o] + gain * acc;
                    }
        return y;
    }

    [Theory]
    [InlineData(3, 4, 3)]
    [InlineData(5, 2, 1)]
    public void EqualsTheNaivePerSampleFormula(int ci, int co, int k)
    {
        manual_seed(3);
        using var smc = new SelfModulatedConv2d(ci, co, k);
        var sd = smc.state_dict();
        using (no_grad())
        {
            sd["scales"].copy_(rand(ci) + 0.5);
            sd["gain"].fill_(1.7);
            sd["conv.bias"].copy_(randn(co));
        }
        using var x = randn(2, ci, 6, 5);
        using var y = smc.call(x);
        var expected = Naive(x.data<float>().ToArray(), x.shape, sd["conv.weight"].data<float>().ToArray(), sd["conv.weight"].shape,
            sd["conv.bias"].data<float>().ToArray(), sd["scales"].data<float>().ToArray(), 1.7f);
        using var e = tensor(expected, y.shape);
        TensorAssert.RelativeClose(e, y, 1e-5, "SMC vs naive formula");
    }

    [Fact]
    public void AtInitialisationEveryEffectiveFilterHasUnitNorm()
    {
        using var smc = new SelfModulatedConv2d(6, 4, 3);
        using var w = smc.ModulatedWeight();
        using var norms = w.square().sum([1, 2, 3]).sqrt();
        Assert.True(norms.allclose(ones(4), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void OutputIgnoresTheScaleOfWeightsAndOfScales()
    {
        // Demodulation makes the layer invariant to per-filter weight scale and to a global scale of
        // the scales vector: a property of Eq 3 that a wrong normalisation axis would break.
        manual_seed(5);
        using var smc = new SelfModulatedConv2d(4, 3, 3);
        using var x = randn(1, 4, 5, 5);
        using var before = smc.call(x);
        var sd = smc.state_dict();
        using (no_grad())
        {
            sd["conv.weight"].mul_(tensor(new float[] { 3f, 0.25f, 7f }).view(3, 1, 1, 1));
            sd["scales"].mul_(4.0);
        }
        using var after = smc.call(x);
        TensorAssert.RelativeClose(before, after, 1e-5, "invariance");
    }

    [Fact]
    public void GradientsReachWeightScalesAndGain()
    {
        using var smc = new SelfModulatedConv2d(3, 2, 3);
        using (no_grad()) smc.state_dict()["scales"].copy_(tensor(new float[] { 0.5f, 1f, 2f }));
        using var x = randn(1, 3, 4, 4);
        using var loss = smc.call(x).square().sum();
        loss.backward();
        foreach (var (name, p) in smc.named_parameters())
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"no gradient for {name}");
    }

    [Fact]
    public void CountsTheConvolutionMacs()
    {
        using var smc = new SelfModulatedConv2d(8, 16, 3);
        using var x = zeros(2, 8, 10, 12);
        using var y = smc.call(x);
        Assert.Equal(2L * 16 * 10 * 12 * 8 * 9, ((IMacCounted)smc).CountMacs(x, y));
    }
}
