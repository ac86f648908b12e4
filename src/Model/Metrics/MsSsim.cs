using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Metrics;

/// <summary>
/// Multi-scale SSIM (Wang, Simoncelli and Bovik 2003): five scales with weights 0.0448, 0.2856,
/// 0.3001, 0.2363, 0.1333; the contrast-structure term at every scale and the full SSIM at the
/// coarsest, each averaged over valid window positions and clamped at 0, combined as a weighted
/// geometric product per channel, then averaged over channels. Between scales the images are
/// halved by 2x2 average pooling (odd sizes padded with zeros, as pytorch-msssim does). Window,
/// constants and data range as <see cref="Ssim"/>.
/// </summary>
public static class MsSsim
{
    public static readonly double[] Weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

    /// <summary>The smallest side that leaves an 11-pixel window at the fifth scale.</summary>
    public const int MinSide = (Ssim.WindowSize - 1) * 16 + 1;

    /// <summary>[N] float64 MS-SSIM of pixel batches in [0, 255]; both sides must be at least <see cref="MinSide"/>.</summary>
    public static Tensor PerImage(Tensor a, Tensor b)
    {
        if (a.ndim != 4 || a.shape[2] < MinSide || a.shape[3] < MinSide)
            throw new ArgumentException($"MS-SSIM needs images of at least {MinSide} x {MinSide} pixels (five scales of an " +
                $"11-pixel window), got [{string.Join(", ", a.shape)}].");
        using var scope = NewDisposeScope();
        var x = a.to(float64);
        var y = b.to(float64);
        Tensor? product = null;
        for (int s = 0; s < Weights.Length; s++)
        {
            var (ssim, cs) = Ssim.Maps(x, y);
            var term = (s == Weights.Length - 1 ? ssim : cs).mean([2, 3]).clamp_min(0.0).pow(Weights[s]); // N x C
            product = product is null ? term : product * term;
            if (s < Weights.Length - 1)
            {
                x = Halve(x);
                y = Halve(y);
            }
        }
        return scope.MoveToOuter(product!.mean([1]));
    }

    private static Tensor Halve(Tensor x) =>
        F.avg_pool2d(x, [2, 2], [2, 2], [x.shape[2] % 2, x.shape[3] % 2]);
}
