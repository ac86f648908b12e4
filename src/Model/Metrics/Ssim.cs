using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Metrics;

/// <summary>
/// Structural similarity (Wang et al. 2004) per image, matching scikit-image's
/// <c>structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=255, channel_axis=...)</c>: an 11-tap Gaussian window (σ 1.5, truncated at 3.5σ),
/// K1 = 0.01, K2 = 0.03, population (co)variances, the SSIM map averaged over the pixels whose window
/// lies inside the image, then over channels. Computed in float64: the variances are differences of
/// large numbers (up to 255²), which float32 would round visibly.
/// </summary>
public static class Ssim
{
    public const int WindowSize = 11;
    public const double Sigma = 1.5;
    public const double K1 = 0.01;
    public const double K2 = 0.03;
    public const double DataRange = 255.0;

    /// <summary>[N] float64 SSIM of N x C x H x W pixel batches in [0, 255]; H and W must be at least 11.</summary>
    public static Tensor PerImage(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var (ssim, _) = Maps(a, b);
        return scope.MoveToOuter(ssim.mean([2, 3]).mean([1]));
    }

    /// <summary>
    /// The SSIM map and the contrast-structure map (the SSIM without its luminance term), each
    /// N x C x (H-10) x (W-10), over the valid window positions.
    /// </summary>
    public static (Tensor Ssim, Tensor ContrastStructure) Maps(Tensor a, Tensor b)
    {
        if (a.ndim != 4 || !a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"SSIM needs two N x C x H x W batches of the same shape, got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}].");
        long n = a.shape[0], c = a.shape[1], h = a.shape[2], w = a.shape[3];
        if (h < WindowSize || w < WindowSize)
            throw new ArgumentException($"SSIM needs images of at least {WindowSize} x {WindowSize} pixels, got {h} x {w}.");
        using var scope = NewDisposeScope();
        var x = a.to(float64).reshape(n * c, 1, h, w);
        var y = b.to(float64).reshape(n * c, 1, h, w);
        // One pass of the separable filter over the five moment images.
        var filtered = Blur(cat([x, y, x * x, y * y, x * y], 0));
        var parts = filtered.chunk(5, 0);
        var (ux, uy, uxx, uyy, uxy) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
        var vx = uxx - ux * ux;
        var vy = uyy - uy * uy;
        var vxy = uxy - ux * uy;
        const double c1 = K1 * DataRange * (K1 * DataRange);
        const double c2 = K2 * DataRange * (K2 * DataRange);
        var cs = (2 * vxy + c2) / (vx + vy + c2);
        var luminance = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1);
        var oh = filtered.shape[2];
        var ow = filtered.shape[3];
        var ssim = (luminance * cs).reshape(n, c, oh, ow);
        return (scope.MoveToOuter(ssim), scope.MoveToOuter(cs.reshape(n, c, oh, ow)));
    }

    /// <summary>The normalised 1-D Gaussian window, as scipy.ndimage builds it.</summary>
    public static double[] Window()
    {
        int r = WindowSize / 2;
        var w = Enumerable.Range(-r, WindowSize).Select(i => Math.Exp(-0.5 * i * i / (Sigma * Sigma))).ToArray();
        double sum = w.Sum();
        return w.Select(v => v / sum).ToArray();
    }

    /// <summary>Valid (unpadded) separable Gaussian filtering of M x 1 x H x W float64 images.</summary>
    private static Tensor Blur(Tensor x)
    {
        using var scope = NewDisposeScope();
        var g = tensor(Window(), float64, x.device);
        var horizontal = F.conv2d(x, g.reshape(1, 1, 1, WindowSize));
        var both = F.conv2d(horizontal, g.reshape(1, 1, WindowSize, 1));
        return scope.MoveToOuter(both);
    }
}
