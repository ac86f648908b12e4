using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Perceptual;

/// <summary>What the training loss relies on: zero on identical images, gradients to the reconstruction only, no leaks.</summary>
public class LpipsBehaviourTests
{
    private static Lpips Model(LpipsNet net)
    {
        var m = new Lpips(net);
        FormulaWeights.Fill(m, stripPrefix: "net.");
        return m;
    }

    [Theory]
    [InlineData(LpipsNet.Vgg)]
    [InlineData(LpipsNet.Alex)]
    public void ImageAgainstItselfIsZero(LpipsNet net)
    {
        using var m = Model(net);
        using var x = FormulaWeights.X0(2, 64, 64);
        using var d = m.call(x, x);
        Assert.True(d.abs().max().item<float>() == 0f);
    }

    [Fact]
    public void GradientReachesTheReconstructionOnly()
    {
        using var m = Model(LpipsNet.Alex);
        using var target = FormulaWeights.X0(2, 64, 64);
        using var recon = FormulaWeights.X1(2, 64, 64).requires_grad_(true);
        using var d = m.call(recon, target);
        using var loss = d.mean();
        loss.backward();
        Assert.NotNull(recon.grad);
        Assert.True(recon.grad!.abs().sum().item<float>() > 0);
        Assert.All(m.parameters(), p => Assert.Null(p.grad));
        Assert.False(m.training);
    }

    [Fact]
    public void StaysInEvalModeWhenAParentTrains()
    {
        using var m = Model(LpipsNet.Alex);
        m.train();
        Assert.False(m.training);
        Assert.All(m.modules(), c => Assert.False(c.training));
        using var inception = new FidInceptionV3();
        inception.train(true);
        Assert.All(inception.modules(), c => Assert.False(c.training));
    }

    [Fact]
    public void ForwardLeaksNoTensors()
    {
        using var m = Model(LpipsNet.Alex);
        using var a = FormulaWeights.X0(1, 64, 64);
        using var b = FormulaWeights.X1(1, 64, 64);
        using (var warm = m.call(a, b)) { }
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
            using (var d = m.call(a, b)) { }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void FollowsTheModuleToAnotherDtype()
    {
        using var m = Model(LpipsNet.Alex);
        using var a = FormulaWeights.X0(1, 64, 64);
        using var b = FormulaWeights.X1(1, 64, 64);
        using var d32 = m.call(a, b);
        m.to(float64);
        using var a64 = a.to(float64);
        using var b64 = b.to(float64);
        using var d64 = m.call(a64, b64);
        Assert.Equal(ScalarType.Float64, d64.dtype);
        Assert.Equal(d32.item<float>(), d64.item<double>(), 1e-5);
    }
}
