namespace LiteVae.Data.Decoding;

/// <summary>Limits and speed switches for decoding.</summary>
public sealed record DecodeOptions
{
    /// <summary>Largest width × height accepted, checked from the header before any pixel is decoded.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Largest encoded file accepted (bytes).</summary>
    public long MaxEncodedBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Let libjpeg-turbo decode JPEGs at n/8 scale (its scaled IDCT) when the target is smaller than
    /// the source. Training only; the evaluation transform always decodes at full size.
    /// </summary>
    public bool JpegScaledDecode { get; init; } = true;

    /// <summary>
    /// The scaled JPEG must still be at least this many times the resized size, so the final
    /// antialiased bicubic resize does at least a factor of this much of the reduction. 2.0 (PIL's
    /// default reducing_gap for thumbnails) keeps crops within ~46–48 dB PSNR of a full decode; 1.0
    /// lets the IDCT do nearly all of it and measured 26 dB (visibly blockier detail).
    /// </summary>
    public double JpegScaleMargin { get; init; } = 2.0;

    public static DecodeOptions Default { get; } = new();

    public void Validate()
    {
        if (MaxPixels < 1) throw new ArgumentException("max-pixels must be at least 1.");
        if (MaxEncodedBytes < 1) throw new ArgumentException("max-file-bytes must be at least 1.");
        if (!(JpegScaleMargin >= 1.0) || JpegScaleMargin > 8) throw new ArgumentException("jpeg-scale-margin must be in [1, 8].");
    }
}
