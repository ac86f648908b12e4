using LiteVae.Model.Distributions;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributions;

/// <summary>The running summary against torch's own mean/std of all the latents at once.</summary>
public class LatentStatisticsTests
{
    [Fact]
    public void BatchedSummaryEqualsTorchOnTheWholeSet()
    {
        manual_seed(11);
        // Channels with different scales and offsets, so per-channel and global numbers differ.
        using var scale = tensor(new float[] { 0.5f, 2f, 5f }).reshape(1, 3, 1, 1);
        using var offset = tensor(new float[] { -1f, 0f, 3f }).reshape(1, 3, 1, 1);
        using var z = randn(7, 3, 4, 5) * scale + offset;
        using var stats = new LatentStatistics();
        foreach (var (start, n) in new[] { (0L, 3L), (3L, 1L), (4L, 3L) })
            stats.Add(z.narrow(0, start, n));
        var s = stats.Summarize();

        using var all = z.to(ScalarType.Float64);
        double std = all.flatten().std().item<double>();   // unbiased, as latent diffusion's 1 / z.flatten().std()
        Assert.Equal(1.0 / std, s.ScaleFactor, 1e-12 / std);
        Assert.Equal(all.mean().item<double>(), s.ShiftFactor, 1e-12);
        Assert.Equal(7 * 3 * 4 * 5, s.Count);
        for (int c = 0; c < 3; c++)
        {
            using var ch = all.select(1, c);
            Assert.Equal(ch.mean().item<double>(), s.ChannelMeans[c], 1e-12);
            Assert.Equal(ch.flatten().std().item<double>(), s.ChannelStds[c], 1e-12);
        }
    }
}
