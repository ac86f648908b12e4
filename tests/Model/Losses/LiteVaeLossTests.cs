using LiteVae.Model.Discriminators;
using LiteVae.Model.Distributions;
using LiteVae.Model.Losses;
using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Losses;

public class LiteVaeLossTests
{
    private static Tensor Random(long seed, ScalarType dtype, params long[] shape)
    {
        using var g = new Generator((ulong)seed);
        return (rand(shape, float64, generator: g) * 2 - 1).to_type(dtype);
    }

    /// <summary>A posterior from mean and logvar (through FromMoments, which owns what it returns).</summary>
    private static DiagonalGaussian Posterior(Tensor mean, Tensor logVar)
    {
        using var moments = cat([mean, logVar], 1);
        return DiagonalGaussian.FromMoments(moments);
    }

    private static double[] Values(Tensor t) => t.to_type(float64).contiguous().data<double>().ToArray();

    private static PatchGanDiscriminator TinyPatchGan(ScalarType dtype)
    {
        var d = new PatchGanDiscriminator(new PatchGanConfig(Ndf: 4, NLayers: 1));
        using (var g = new Generator(77))
        using (no_grad())
            foreach (var p in d.parameters())
                p.copy_(randn(p.shape, generator: g) * 0.2);
        d.to(dtype);
        return d;
    }

    [Theory]
    [InlineData(KlReduction.ElementMean)]
    [InlineData(KlReduction.SampleSum)]
    public void TermsMatchNaiveFormulasAndTheTotalIsTheirWeightedSum(KlReduction reduction)
    {
        var config = new LossConfig { KlReduction = reduction, WaveletWeight = 0.7, GaussianWeight = 0.3, KlWeight = 0.05, L1Weight = 1.5 };
        using var loss = new LiteVaeLoss(config, null, CPU);
        using var x = Random(1, float32, 2, 3, 16, 16);
        using var xhat = Random(2, float32, 2, 3, 16, 16);
        using var mean = Random(3, float32, 2, 4, 2, 2);
        using var logVar = Random(4, float32, 2, 4, 2, 2);
        using var posterior = Posterior(mean, logVar);
        var g = loss.Generator(x, x, xhat, posterior, null, null);

        double l1 = Values(x).Zip(Values(xhat)).Average(p => Math.Abs(p.First - p.Second));
        var m = Values(mean);
        var lv = Values(logVar);
        var perElement = m.Zip(lv).Select(p => 0.5 * (p.First * p.First + Math.Exp(p.Second) - 1 - p.Second)).ToArray();
        double kl = reduction == KlReduction.ElementMean
            ? perElement.Average()
            : (perElement.Take(16).Sum() + perElement.Skip(16).Sum()) / 2; // 4*2*2 = 16 elements per sample
        Assert.Equal(l1, g.Terms["l1"].item<float>(), 5);
        Assert.Equal(kl, g.Terms["kl"].item<float>(), 4);
        Assert.False(g.Terms.ContainsKey("lpips"));
        Assert.False(g.Terms.ContainsKey("g_adv"));
        double expected = 1.5 * l1 + 0.7 * g.Terms["wavelet"].item<float>() + 0.3 * g.Terms["gaussian"].item<float>() + 0.05 * kl;
        Assert.Equal(expected, g.Total.item<float>(), 4);
        Assert.Equal(g.Total.item<float>(), g.Terms["total"].item<float>());
    }

    [Fact]
    public void PerceptualTermIsTheMeanLpipsDistance()
    {
        using var lpips = new Lpips(LpipsNet.Vgg); // random weights: fine for checking the plumbing
        using var loss = new LiteVaeLoss(new LossConfig { PerceptualWeight = 2.0, WaveletWeight = 0, GaussianWeight = 0, KlWeight = 0 }, lpips, CPU);
        Assert.True(loss.PerceptualEnabled);
        using var x = Random(5, float32, 2, 3, 16, 16);
        using var xhat = Random(6, float32, 2, 3, 16, 16);
        using var posterior = Posterior(zeros(2, 4, 2, 2), zeros(2, 4, 2, 2));
        var g = loss.Generator(x, x, xhat, posterior, null, null);
        using var direct = lpips.call(xhat, x);
        Assert.Equal(direct.mean().item<float>(), g.Terms["lpips"].item<float>(), 6);
        Assert.Equal(g.Terms["l1"].item<float>() + 2 * g.Terms["lpips"].item<float>(), g.Total.item<float>(), 5);

        using var off = new LiteVaeLoss(new LossConfig(), null, CPU);
        Assert.False(off.PerceptualEnabled);
    }

    [Theory]
    [InlineData("hinge")]
    [InlineData("nsat")]
    public void AdversarialTermsFollowTheGanLossFormulas(string kind)
    {
        using var d = TinyPatchGan(float32);
        d.eval(); // running statistics: the same logits on every call
        using var loss = new LiteVaeLoss(new LossConfig { GanLoss = kind, AdversarialWeight = 0.1, WaveletWeight = 0, GaussianWeight = 0, KlWeight = 0 }, null, CPU);
        using var x = Random(7, float32, 2, 3, 16, 16);
        using var xhat = Random(8, float32, 2, 3, 16, 16);
        using var posterior = Posterior(zeros(2, 4, 2, 2), zeros(2, 4, 2, 2));
        var fake = Values(d.Logits(xhat)[0]);
        var real = Values(d.Logits(x)[0]);
        static double Sig(double v) => 1 / (1 + Math.Exp(-v));
        double gAdv = kind == "hinge" ? -fake.Average() : -fake.Average(f => Math.Log(Sig(f) + 1e-6));
        double dLoss = kind == "hinge"
            ? 0.5 * (real.Average(r => Math.Max(0, 1 - r)) + fake.Average(f => Math.Max(0, 1 + f)))
            : -0.5 * (real.Average(r => Math.Log(Sig(r) + 1e-6)) + fake.Average(f => Math.Log(1 - Sig(f) + 1e-6)));

        var g = loss.Generator(x, x, xhat, posterior, d, null);
        Assert.Equal(gAdv, g.Terms["g_adv"].item<float>(), 5);
        Assert.Equal(g.Terms["l1"].item<float>() + 0.1 * gAdv, g.Total.item<float>(), 5);
        var dl = loss.Discriminator(x, xhat, d);
        Assert.Equal(dLoss, dl.Total.item<float>(), 5);
    }

    [Fact]
    public void AdaptiveWeightIsTheRatioOfLastLayerGradientNorms()
    {
        // A one-conv "decoder" whose weight plays the last layer.
        using var conv = nn.Conv2d(3, 3, 3, padding: 1);
        using var d = TinyPatchGan(float32);
        d.eval();
        var config = new LossConfig { Weighting = AdversarialWeighting.Adaptive, AdversarialWeight = 0.5, WaveletWeight = 0, GaussianWeight = 0, KlWeight = 0 };
        using var loss = new LiteVaeLoss(config, null, CPU);
        using var x = Random(9, float32, 2, 3, 16, 16);
        using var z = Random(10, float32, 2, 3, 16, 16);
        using var posterior = Posterior(zeros(2, 4, 2, 2), zeros(2, 4, 2, 2));

        using var xhat = conv.call(z);
        var g = loss.Generator(x, x, xhat, posterior, d, conv.weight);

        // Independent: gradients of each part on their own graphs.
        using var xhat2 = conv.call(z);
        using var nll = (xhat2 - x).abs().mean();
        using var gNll = autograd.grad([nll], [conv.weight!])[0];
        using var xhat3 = conv.call(z);
        using var adv = -d.Logits(xhat3)[0].mean();
        using var gAdv = autograd.grad([adv], [conv.weight!])[0];
        double expected = Math.Clamp(gNll.norm().item<float>() / (gAdv.norm().item<float>() + 1e-4), 0, 1e4) * 0.5;
        Assert.Equal(expected, g.Terms["adv_weight"].item<float>(), 4);
        Assert.Null(conv.weight!.grad); // autograd.grad leaves .grad alone
    }

    [Fact]
    public void GradientWithRespectToTheReconstructionMatchesFiniteDifferences()
    {
        using var lpips = new Lpips(LpipsNet.Vgg);
        lpips.to(float64);
        using var d = TinyPatchGan(float64);
        d.eval();
        var config = new LossConfig { PerceptualWeight = 0.8, WaveletWeight = 1.0, GaussianWeight = 0.5, KlWeight = 0.01, AdversarialWeight = 0.1 };
        using var loss = new LiteVaeLoss(config, lpips, CPU);
        using var x = Random(11, float64, 1, 3, 16, 16);
        using var posterior = Posterior(Random(12, float64, 1, 4, 2, 2), Random(13, float64, 1, 4, 2, 2));
        using var xhat0 = Random(14, float64, 1, 3, 16, 16);

        double Loss(Tensor xh)
        {
            using var scope = NewDisposeScope();
            return loss.Generator(x, x, xh, posterior, d, null).Total.item<double>();
        }
        using var xhat = xhat0.clone().requires_grad_(true);
        var g = loss.Generator(x, x, xhat, posterior, d, null);
        g.Total.backward();
        var analytic = Values(xhat.grad!);

        var rng = new Random(3);
        const double h = 1e-6;
        for (int trial = 0; trial < 12; trial++)
        {
            int i = rng.Next((int)xhat0.numel());
            using var plus = xhat0.clone();
            using var minus = xhat0.clone();
            plus.view(-1)[i].add_(h);
            minus.view(-1)[i].sub_(h);
            double numeric = (Loss(plus) - Loss(minus)) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic[i]) <= 1e-6 + 1e-4 * Math.Abs(analytic[i]),
                $"element {i}: finite difference {numeric:E6}, autograd {analytic[i]:E6}");
        }
    }
}
