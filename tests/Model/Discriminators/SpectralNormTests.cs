using LiteVae.Model.Discriminators;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>Spectral-norm layers checked against singular values from torch.linalg.svdvals.</summary>
public class SpectralNormTests
{
    private static double TopSingularValue(Tensor w)
    {
        using var m = w.detach().reshape(w.shape[0], -1).to(float64);
        using var s = linalg.svdvals(m);
        return s[0].item<double>();
    }

    private static Tensor Buffer(nn.Module m, string name) => m.named_buffers().Single(b => b.name == name).buffer;

    [Fact]
    public void TorchStyleConvConvergesToUnitSpectralNorm()
    {
        manual_seed(1);
        using var conv = new TorchSnConv2d(4, 6, 3, padding: 1);
        conv.train();
        for (int i = 0; i < 100; i++)
            conv.NormalizedWeight().Dispose();
        using var w = conv.NormalizedWeight();
        Assert.Equal(1.0, TopSingularValue(w), 4);
    }

    [Fact]
    public void BigGanStyleConvConvergesAndLogsTheSingularValue()
    {
        manual_seed(2);
        using var conv = new BigGanSnConv2d(4, 6, 3, 1);
        conv.train();
        for (int i = 0; i < 100; i++)
            conv.NormalizedWeight().Dispose();
        using var w = conv.NormalizedWeight();
        Assert.Equal(1.0, TopSingularValue(w), 4);
        // sv0 holds the estimate of the raw weight's top singular value.
        Assert.Equal(TopSingularValue(conv.Weight), Buffer(conv, "sv0").item<float>(), 3);
    }

    [Fact]
    public void BigGanStyleLinearConvergesToUnitSpectralNorm()
    {
        manual_seed(3);
        using var lin = new BigGanSnLinear(10, 7);
        lin.train();
        for (int i = 0; i < 100; i++)
            lin.NormalizedWeight().Dispose();
        using var w = lin.NormalizedWeight();
        Assert.Equal(1.0, TopSingularValue(w), 4);
    }

    [Fact]
    public void EvalModeLeavesThePowerIterationStateAlone()
    {
        manual_seed(4);
        using var torchStyle = new TorchSnConv2d(3, 5, 3, padding: 1);
        using var bigGan = new BigGanSnConv2d(3, 5, 3, 1);
        torchStyle.eval();
        bigGan.eval();
        using var u = Buffer(torchStyle, "weight_u").clone();
        using var v = Buffer(torchStyle, "weight_v").clone();
        using var u0 = Buffer(bigGan, "u0").clone();
        using var sv0 = Buffer(bigGan, "sv0").clone();
        using var x = randn(1, 3, 8, 8);
        using (no_grad())
        {
            torchStyle.call(x).Dispose();
            bigGan.call(x).Dispose();
        }
        Assert.True(u.equal(Buffer(torchStyle, "weight_u")).all().item<bool>());
        Assert.True(v.equal(Buffer(torchStyle, "weight_v")).all().item<bool>());
        Assert.True(u0.equal(Buffer(bigGan, "u0")).all().item<bool>());
        Assert.True(sv0.equal(Buffer(bigGan, "sv0")).all().item<bool>());
        // ... and training mode does update it.
        torchStyle.train();
        using (no_grad()) torchStyle.call(x).Dispose();
        Assert.False(u.equal(Buffer(torchStyle, "weight_u")).all().item<bool>());
    }

    [Fact]
    public void AdaptiveConvWeightHasUnitFrobeniusNorm()
    {
        // The 1 x out x in x 1 x 1 weight is one row to spectral norm, whose only singular value is
        // its Frobenius norm, so a single power-iteration step normalises it exactly.
        manual_seed(5);
        using var ac = new AdaptiveConv(12, 12, bias: true);
        ac.train();
        using var x = randn(2, 12, 4, 4);
        using (no_grad()) ac.call(x).Dispose();
        using var w = ac.Kernel.NormalizedWeight();
        Assert.Equal(new long[] { 12, 12, 1, 1 }, w.shape);
        Assert.Equal(1.0, w.to(float64).norm().item<double>(), 6);
        Assert.True(TopSingularValue(w) > 0.3, "a 12 x 12 matrix of unit Frobenius norm has room below 1 for its top singular value");
    }

    [Fact]
    public void GradientFlowsThroughSigmaToTheRawWeight()
    {
        // d/dW of sum(W / sigma(W)) is not d/dW of sum(W) / sigma: the sigma term must be in the graph.
        manual_seed(6);
        using var conv = new TorchSnConv2d(2, 3, 1);
        conv.train();
        using var w = conv.NormalizedWeight();
        using var loss = w.square().sum();
        loss.backward();
        // With u, v at the top singular vectors, ||W/sigma||_F^2 is scale-invariant: its gradient is
        // orthogonal to W itself.
        var raw = conv.parameters().First(p => p.dim() == 4);
        using var radial = (raw.grad! * raw).sum();
        Assert.True(raw.grad!.abs().sum().item<float>() > 0);
        Assert.True(Math.Abs(radial.item<float>()) < 1e-4 * raw.grad.abs().sum().item<float>() + 1e-6);
    }
}
