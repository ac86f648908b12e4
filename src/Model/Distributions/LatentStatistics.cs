using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributions;

/// <summary>Per-channel and global mean/std of latents, and the scaling factor latent diffusion uses (1 / std).</summary>
public sealed record LatentSummary(long Count, double Mean, double Std, IReadOnlyList<double> ChannelMeans, IReadOnlyList<double> ChannelStds)
{
    /// <summary>The latent scaling factor as latent diffusion computes it: 1 / std of every latent value.</summary>
    public double ScaleFactor => 1.0 / Std;

    /// <summary>The shift (mean) that shift-and-scale schemes subtract before scaling.</summary>
    public double ShiftFactor => Mean;
}

/// <summary>
/// Running sums (float64, on the CPU) over latents N x C x H x W, so any number of batches can be summarised
/// in constant memory. Std is the unbiased one (torch.std's default), as latent diffusion's
/// <c>1 / z.flatten().std()</c>.
/// </summary>
public sealed class LatentStatistics : IDisposable
{
    /// <summary>Weights-file metadata keys written by `litevae latent-stats --write`.</summary>
    public const string ScaleFactorKey = "litevae.latent_scale_factor";
    public const string ShiftFactorKey = "litevae.latent_shift_factor";
    public const string SummaryKey = "litevae.latent_stats";

    private Tensor? _sum;
    private Tensor? _sumSq;
    private long _perChannel;

    public void Add(Tensor latents)
    {
        if (latents.ndim != 4) throw new ArgumentException($"latents must be N x C x H x W, got [{string.Join(", ", latents.shape)}].");
        using var scope = NewDisposeScope();
        var z = latents.detach().to(ScalarType.Float64, CPU);
        var s = z.sum([0, 2, 3]);
        var sq = z.square().sum([0, 2, 3]);
        if (_sum is null)
        {
            _sum = s.DetachFromDisposeScope();
            _sumSq = sq.DetachFromDisposeScope();
        }
        else
        {
            if (_sum.shape[0] != s.shape[0]) throw new ArgumentException($"latents have {s.shape[0]} channels, earlier ones {_sum.shape[0]}.");
            _sum.add_(s);
            _sumSq!.add_(sq);
        }
        _perChannel += latents.shape[0] * latents.shape[2] * latents.shape[3];
    }

    public LatentSummary Summarize()
    {
        if (_sum is null || _perChannel < 2) throw new InvalidOperationException("need at least two latent values per channel.");
        var sums = _sum.data<double>().ToArray();
        var squares = _sumSq!.data<double>().ToArray();
        long n = _perChannel;
        var means = sums.Select(s => s / n).ToArray();
        var stds = sums.Zip(squares, (s, q) => Math.Sqrt(Math.Max(0, (q - s * s / n) / (n - 1)))).ToArray();
        long total = n * sums.Length;
        double sum = sums.Sum(), sumSq = squares.Sum();
        double mean = sum / total;
        double std = Math.Sqrt(Math.Max(0, (sumSq - sum * sum / total) / (total - 1)));
        return new LatentSummary(total, mean, std, means, stds);
    }

    public void Dispose()
    {
        _sum?.Dispose();
        _sumSq?.Dispose();
    }
}
