using static TorchSharp.torch;

namespace LiteVae.Model.Metrics;

/// <summary>
/// Peak signal-to-noise ratio per image on 8-bit pixels (data range 255), the mean squared error taken
/// over all pixels and channels of the image, as scikit-image's <c>peak_signal_noise_ratio</c>.
/// Identical images give +∞.
/// </summary>
public static class Psnr
{
    /// <param name="a">N x C x H x W pixels in [0, 255] (float64 recommended).</param>
    /// <returns>[N] float64 decibels.</returns>
    public static Tensor PerImage(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var mse = (a.to(float64) - b.to(float64)).square().flatten(1).mean([1]);
        var psnr = mse.reciprocal().mul(255.0 * 255.0).log10().mul(10.0);
        return scope.MoveToOuter(psnr);
    }
}
