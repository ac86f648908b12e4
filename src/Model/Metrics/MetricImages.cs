using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Metrics;

/// <summary>
/// The one place where images become metric inputs. Every metric sees 8-bit images, as a user who saves
/// the reconstruction to PNG would: uint8 batches are taken as they are; float batches are taken to be
/// in [-1, 1], clamped, mapped to [0, 255] and rounded (half to even).
/// </summary>
public static class MetricImages
{
    /// <summary>N x 3 x H x W, uint8 or float in [-1, 1] → the same pixels as float64 in [0, 255], integral.</summary>
    public static Tensor ToPixels255(Tensor images, string what = "images")
    {
        Check(images, what);
        if (images.dtype == ScalarType.Byte)
            return images.to(float64);
        if (!images.is_floating_point())
            throw new ArgumentException($"{what}: expected uint8 or floating-point pixels, got {images.dtype}.");
        using var scope = NewDisposeScope();
        var pixels = images.to(float64).clamp(-1.0, 1.0).add(1.0).mul(127.5).round();
        return scope.MoveToOuter(pixels);
    }

    /// <summary>8-bit pixels (float, [0, 255]) → float32 in [-1, 1], the input of LPIPS and FID Inception.</summary>
    public static Tensor ToSigned(Tensor pixels255) => pixels255.to(float32).div(127.5).sub(1.0);

    public static void Check(Tensor images, string what)
    {
        if (images.ndim != 4 || images.shape[1] != 3)
            throw new ArgumentException($"{what}: expected an N x 3 x H x W batch, got [{string.Join(", ", images.shape)}].");
    }

    public static void CheckPair(Tensor originals, Tensor reconstructions)
    {
        Check(originals, "originals");
        Check(reconstructions, "reconstructions");
        if (!originals.shape.SequenceEqual(reconstructions.shape))
            throw new ArgumentException($"originals [{string.Join(", ", originals.shape)}] and reconstructions " +
                $"[{string.Join(", ", reconstructions.shape)}] must have the same shape.");
    }
}
