using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Evaluation;

/// <summary>
/// What an evaluation scores: something that turns a batch of 8-bit images into 8-bit reconstructions.
/// The standalone evaluation wraps a loaded <see cref="LiteAutoencoder"/>; the training loop wraps its
/// trainer (raw or EMA weights), so both go through the same <see cref="ReconstructionEvaluator"/>.
/// </summary>
public interface IReconstructor
{
    /// <summary>Where the reconstruction runs; inputs are moved there once and shared with the metrics.</summary>
    Device Device { get; }

    /// <summary>uint8 N x 3 x H x W (any device) → uint8 N x 3 x H x W (any device). The caller disposes the result.</summary>
    Tensor Reconstruct(Tensor pixels);
}

/// <summary>
/// encode → posterior mode → decode with a loaded autoencoder, on its device and dtype, under no_grad.
/// Inputs map to [-1, 1] by x / 127.5 − 1 (fp32; the wavelet transform casts for a bf16 model);
/// outputs are clamped to [-1, 1], mapped back and rounded half to even, as a saved PNG would be.
/// </summary>
public sealed class AutoencoderReconstructor(LiteAutoencoder model, Device device, bool channelsLast = false) : IReconstructor
{
    public LiteAutoencoder Model { get; } = model;

    public Device Device { get; } = device;

    public Tensor Reconstruct(Tensor pixels)
    {
        if (pixels.dtype != ScalarType.Byte || pixels.ndim != 4 || pixels.shape[1] != 3)
            throw new ArgumentException($"expected uint8 pixels N x 3 x H x W, got {pixels.dtype} [{string.Join(", ", pixels.shape)}].");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = pixels.to(Device).to(ScalarType.Float32).div_(127.5).sub_(1.0);
        if (channelsLast) x = MemoryLayout.ToChannelsLast(x);
        using var posterior = Model.Encode(x);
        var images = Model.Decode(posterior.Mode());
        var rec = ToPixels(images);
        return scope.MoveToOuter(rec);
    }

    /// <summary>Model output in [-1, 1] (any float dtype) → uint8, same layout; round half to even.</summary>
    public static Tensor ToPixels(Tensor images)
    {
        using var scope = NewDisposeScope();
        var p = images.to(ScalarType.Float32).clamp(-1.0, 1.0).add_(1.0).mul_(127.5).round_().to(ScalarType.Byte).contiguous();
        return scope.MoveToOuter(p);
    }
}
