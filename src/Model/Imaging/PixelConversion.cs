using static TorchSharp.torch;

namespace LiteVae.Model.Imaging;

/// <summary>
/// The model's image convention (architecture "Model contract"): uint8 pixels map to [-1, 1] with
/// x / 127.5 - 1, and model outputs map back by clamping to [-1, 1], (x + 1) * 127.5 and rounding.
/// </summary>
public static class PixelConversion
{
    /// <summary>uint8 N x H x W x C (interleaved pixels) to float N x C x H x W in [-1, 1], on the tensor's device.</summary>
    public static Tensor ToModelInput(Tensor pixels, ScalarType dtype = ScalarType.Float32)
    {
        if (pixels.dtype != ScalarType.Byte || pixels.dim() != 4)
            throw new ArgumentException($"expected uint8 pixels N x H x W x C, got {pixels.dtype} [{string.Join(", ", pixels.shape)}].");
        using var scope = NewDisposeScope();
        var x = pixels.permute(0, 3, 1, 2).to(dtype).div_(127.5).sub_(1.0).contiguous();
        return scope.MoveToOuter(x);
    }

    /// <summary>Model output N x C x H x W to uint8 N x H x W x C: clamp to [-1, 1], map to [0, 255], round half to even.</summary>
    public static Tensor ToPixels(Tensor images)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"expected images N x C x H x W, got [{string.Join(", ", images.shape)}].");
        using var scope = NewDisposeScope();
        var p = images.to(float32).clamp(-1.0, 1.0).add_(1.0).mul_(127.5).round_().to(ScalarType.Byte);
        return scope.MoveToOuter(p.permute(0, 2, 3, 1).contiguous());
    }
}
