using LiteVae.Data.Decoding;
using LiteVae.Data.Resampling;

namespace LiteVae.Data.Transforms;

/// <summary>What makes one sample's augmentation reproducible: the run seed, the epoch and the sample's
/// index in the epoch's logical sequence. Nothing about workers or threads enters.</summary>
public readonly record struct SampleKey(long Seed, int Epoch, long Index);

/// <summary>Decodes one encoded image and produces a square crop as planar RGB uint8 (3 × R × R).</summary>
public interface ISampleTransform
{
    /// <summary>Side of the square output, in pixels.</summary>
    int Resolution { get; }

    /// <summary>Writes 3 × R × R bytes into <paramref name="dst"/>. Throws <see cref="BadSampleException"/> for a bad image.</summary>
    void Apply(ReadOnlyMemory<byte> encoded, SampleKey key, Span<byte> dst, TransformScratch scratch);
}

/// <summary>Buffers one worker reuses for every image it transforms (not thread-safe).</summary>
public sealed class TransformScratch
{
    /// <summary>The decoded (upright) pixels the resampler reads.</summary>
    public RgbaRegion Decoded { get; } = new();
    /// <summary>Stored pixels of a rotated image before orientation is applied.</summary>
    public RgbaRegion Oriented { get; } = new();
    public ResampleScratch Resample { get; } = new();
}

/// <summary>Where a transform takes its crop: resize the upright image to ResizedWidth × ResizedHeight,
/// then take the Size × Size window at (X, Y), mirrored when Flip.</summary>
public readonly record struct CropPlan(int ResizedWidth, int ResizedHeight, int X, int Y, int Size, bool Flip);

/// <summary>Runs a <see cref="CropPlan"/> on an opened image (the shared core of the transforms).</summary>
public static class CropRunner
{
    /// <summary>
    /// Decodes just enough of the image for the plan and resamples the crop into <paramref name="dst"/>
    /// (3 × Size × Size, planar RGB). JPEGs may be decoded at a reduced 1/2, 1/4 or 1/8 scale first
    /// (when <see cref="DecodeOptions.JpegScaledDecode"/>), and upright JPEGs decode only the rows and
    /// columns the crop reads; every other case decodes the whole image.
    /// </summary>
    public static void Run(EncodedImage image, CropPlan plan, DecodeOptions decode, Span<byte> dst, TransformScratch scratch) =>
        Run(image, plan, decode.JpegScaledDecode, decode.JpegScaleMargin, dst, scratch);

    internal static void Run(EncodedImage image, CropPlan plan, bool allowScaledJpeg, double scaleMargin,
                             Span<byte> dst, TransformScratch scratch)
    {
        int eighths = allowScaledJpeg
            ? image.ChooseScale(plan.ResizedWidth * scaleMargin, plan.ResizedHeight * scaleMargin)
            : 8;
        var (sw, sh) = image.ScaledSize(eighths);
        if (Orientation.SwapsAxes(image.Origin)) (sw, sh) = (sh, sw);

        var (x0, y0, x1, y1) = Resampler.SourceWindow(sw, sh, plan.ResizedWidth, plan.ResizedHeight,
                                                      plan.X, plan.Y, plan.Size, plan.Size, scratch.Resample);
        // Non-JPEG or rotated inputs come back whole and upright; either way the region covers the window.
        image.DecodeWindow(eighths, x0, y0, x1, y1, scratch.Decoded, scratch.Oriented);
        Resampler.ResizeCropPlanar(scratch.Decoded, plan.ResizedWidth, plan.ResizedHeight, plan.X, plan.Y, plan.Size, plan.Size,
                                   plan.Flip, dst, scratch.Resample);
    }
}
