using LiteVae.Model.Distributions;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributions;

public class DiagonalGaussianTests
{
    [Fact]
    public void SplitsMomentsIntoMeanAndClampedLogVar()
    {
        using var moments = cat([full(1, 2, 2, 2, 0.5f), tensor(new float[] { -40, 0, 1, 25, -1, 2, 3, 30 }).view(1, 2, 2, 2)], 1);
        using var q = DiagonalGaussian.FromMoments(moments);
        Assert.Equal(new long[] { 1, 2, 2, 2 }, q.Mean.shape);
        Assert.Equal(new float[] { -30, 0, 1, 20, -1, 2, 3, 20 }, q.LogVar.data<float>().ToArray());
        using var mode = q.Mode();
        Assert.True(mode.equal(q.Mean).all().item<bool>());
    }

    [Fact]
    public void KlIsTheClosedFormPerSample()
    {
        var mean = new float[] { 0.3f, -1.2f, 0.0f, 2.0f };
        var logvar = new float[] { 0.1f, -0.5f, 0.0f, 1.5f };
        using var moments = cat([tensor(mean).view(2, 1, 1, 2), tensor(logvar).view(2, 1, 1, 2)], 1);
        using var q = DiagonalGaussian.FromMoments(moments);
        using var kl = q.Kl();
        using var klMean = q.KlPerElementMean();
        double Term(int i) => 0.5 * (mean[i] * mean[i] + Math.Exp(logvar[i]) - 1 - logvar[i]);
        Assert.Equal(new long[] { 2 }, kl.shape);
        Assert.Equal(Term(0) + Term(1), kl[0].item<float>(), 5);
        Assert.Equal(Term(2) + Term(3), kl[1].item<float>(), 5);
        Assert.Equal((Term(2) + Term(3)) / 2, klMean[1].item<float>(), 5);
    }

    [Fact]
    public void KlOfTheStandardNormalIsZero()
    {
        using var moments = zeros(3, 8, 4, 4);
        using var q = DiagonalGaussian.FromMoments(moments);
        using var kl = q.Kl();
        Assert.Equal(0.0, kl.abs().max().item<float>(), 7);
    }

    [Fact]
    public void SamplesHaveTheRightMomentsAndStayOnTheTensorsDevice()
    {
        using var moments = cat([full(1, 1, 200, 200, 1.5f), full(1, 1, 200, 200, (float)Math.Log(0.25))], 1);
        using var q = DiagonalGaussian.FromMoments(moments);
        using var g = new Generator(42);
        using var z = q.Sample(g);
        Assert.Equal(q.Mean.device.ToString(), z.device.ToString());
        Assert.Equal(1.5, z.mean().item<float>(), 1);
        Assert.Equal(0.5, z.std().item<float>(), 1);
        using var g2 = new Generator(42);
        using var again = q.Sample(g2);
        Assert.True(again.equal(z).all().item<bool>(), "the same generator seed must give the same sample");
    }
}
