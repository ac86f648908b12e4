using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

public class GuardEmaRandomTests
{
    [Fact]
    public void GuardReportsTheGlobalNormAndClipsLikeTorch()
    {
        using var g = tensor(new float[] { 3, 4, 0, 12 }); // norm 13
        var check = GradientGuard.Check(g, clipNorm: 6.5);
        Assert.Equal(13f, check.Norm.item<float>(), 4);
        Assert.Equal(1f, check.Ok.item<float>());
        // clip_grad_norm_: multiply by 6.5 / (13 + 1e-6).
        float c = (float)(6.5 / (13 + 1e-6));
        Assert.Equal(new[] { 3 * c, 4 * c, 0, 12 * c }, g.data<float>().ToArray());

        using var small = tensor(new float[] { 0.3f, 0.4f });
        GradientGuard.Check(small, clipNorm: 6.5);
        Assert.Equal(new[] { 0.3f, 0.4f }, small.data<float>().ToArray());
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void GuardFlagsNonFiniteGradients(float bad)
    {
        using var g = tensor(new float[] { 1, bad, 2 });
        var check = GradientGuard.Check(g, clipNorm: 1.0);
        Assert.Equal(0f, check.Ok.item<float>());
    }

    [Fact]
    public void SkippedStepLogNamesStepsAndStopsAfterTheLimit()
    {
        using var log = new SkippedStepLog(maxConsecutive: 3);
        using var good = ones([]);
        using var bad = zeros([]);
        log.Add(1, good);
        log.Add(2, bad);
        log.Add(3, bad);
        log.Add(4, good);
        Assert.Equal(new long[] { 2, 3 }, log.Flush());
        Assert.Equal(2, log.TotalSkipped);
        log.Add(5, bad);
        log.Add(6, bad);
        Assert.Equal(new long[] { 5, 6 }, log.Flush());
        log.Add(7, bad); // third in a row, across windows
        var e = Assert.Throws<NonFiniteGradientException>(() => log.Flush());
        Assert.Equal(7, e.Step);
        Assert.Contains("3 consecutive", e.Message);
    }

    [Fact]
    public void EmaFollowsTheLitEmaFormula()
    {
        using var w = tensor(new float[] { 1, 2 });
        using var ema = new Ema(w, decay: 0.9);
        // Naive reimplementation in doubles.
        double[] shadow = [1, 2];
        double[] weights = [1, 2];
        for (int n = 1; n <= 30; n++)
        {
            weights[0] += 0.5; weights[1] -= 0.25;
            w.copy_(tensor(new[] { (float)weights[0], (float)weights[1] }));
            ema.Update();
            double d = Math.Min(0.9, (1.0 + n) / (10.0 + n));
            for (int i = 0; i < 2; i++) shadow[i] -= (1 - d) * (shadow[i] - weights[i]);
        }
        var got = ema.Shadow.data<float>().ToArray();
        Assert.Equal(shadow[0], got[0], 4);
        Assert.Equal(shadow[1], got[1], 4);
        Assert.Equal(30, ema.Updates);
        Assert.Equal(2.0 / 11.0, ema.DecayAt(1), 12);
        Assert.Equal(0.9, ema.DecayAt(1000), 12);
    }

    [Fact]
    public void StepRandomDependsOnlyOnSeedStepAndPurpose()
    {
        using var r1 = new StepRandom(42, CPU);
        using var r2 = new StepRandom(42, CPU);
        using var a = randn([16], generator: r1.For(7, "posterior")!);
        using var _ = randn([16], generator: r2.For(3, "posterior")!); // history must not matter
        using var b = randn([16], generator: r2.For(7, "posterior")!);
        Assert.True(a.allclose(b, 0, 0));
        using var c = randn([16], generator: r2.For(7, "other")!);
        using var d = randn([16], generator: r2.For(8, "posterior")!);
        using var r3 = new StepRandom(43, CPU);
        using var e = randn([16], generator: r3.For(7, "posterior")!);
        Assert.False(a.allclose(c));
        Assert.False(a.allclose(d));
        Assert.False(a.allclose(e));
        Assert.NotEqual(StepRandom.Derive(1, 2, "x"), StepRandom.Derive(2, 1, "x"));
    }
}
