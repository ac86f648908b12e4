using LiteVae.Model.Losses;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>
/// The GAN losses against values worked out by hand (scalar Python math) for real logits
/// [2, -0.5] and fake logits [0.5, -3]:
/// hinge D = 0.5 (mean[0, 1.5] + mean[1.5, 0]) = 0.75, G = -mean fake = 1.25;
/// logistic D = 0.5 (mean softplus(-real) + mean softplus(fake)) = 0.5309173327,
/// G = mean softplus(-fake) = 1.7613321679; nsat (1e-6 inside the logs) D = 0.5309154621,
/// G = 1.7613208220.
/// </summary>
public class GanLossTests
{
    private static Tensor Real() => tensor(new[] { 2f, -0.5f });
    private static Tensor Fake() => tensor(new[] { 0.5f, -3f });

    [Theory]
    [InlineData(GanLossKind.Hinge, 0.75, 1.25)]
    [InlineData(GanLossKind.Logistic, 0.5309173327, 1.7613321679)]
    [InlineData(GanLossKind.NonSaturating, 0.5309154621, 1.7613208220)]
    public void LossesMatchHandComputedValues(GanLossKind kind, double d, double g)
    {
        using var real = Real();
        using var fake = Fake();
        using var dl = GanLosses.Discriminator(kind, real, fake);
        using var gl = GanLosses.Generator(kind, fake);
        Assert.Equal(d, dl.item<float>(), 5);
        Assert.Equal(g, gl.item<float>(), 5);
    }

    [Fact]
    public void MultipleOutputsAreAveragedWithAMeanPerOutput()
    {
        // A 1-element output and a 4-element one weigh the same: hinge D of ([2], [0.5]) is
        // 0.5 (0 + 1.5) = 0.75 and of (all -0.5, all -3) is 0.5 (1.5 + 0) = 0.75 -> 0.75; pair them
        // differently to make the two terms unequal: ([2],[0.5]) = 0.75 and (all 3, all -3) = 0 -> 0.375.
        using var r1 = tensor(new[] { 2f });
        using var f1 = tensor(new[] { 0.5f });
        using var r2 = full(new long[] { 2, 2 }, 3f);
        using var f2 = full(new long[] { 2, 2 }, -3f);
        using var d = GanLosses.Discriminator(GanLossKind.Hinge, [r1, r2], [f1, f2]);
        Assert.Equal(0.375, d.item<float>(), 6);
        using var g = GanLosses.Generator(GanLossKind.Hinge, [f1, f2]);
        Assert.Equal((-0.5 + 3) / 2, g.item<float>(), 6);
    }

    [Fact]
    public void NoOutputsGiveAZeroLoss()
    {
        using var d = GanLosses.Discriminator(GanLossKind.Hinge, [], []);
        using var g = GanLosses.Generator(GanLossKind.Logistic, []);
        Assert.Equal(0f, d.item<float>());
        Assert.Equal(0f, g.item<float>());
    }

    [Fact]
    public void MismatchedOutputCountsAreRefused()
    {
        using var r = Real();
        Assert.Throws<ArgumentException>(() => GanLosses.Discriminator(GanLossKind.Hinge, [r], []));
    }

    [Fact]
    public void ConfigNamesParse()
    {
        Assert.True(GanLosses.TryParse("nsat", out var k) && k == GanLossKind.NonSaturating);
        Assert.False(GanLosses.TryParse("wgan", out _));
    }
}
