using System.Buffers;
using SkiaSharp;

namespace LiteVae.Data.Decoding;

/// <summary>
/// One encoded image (JPEG, PNG, WebP, or anything else Skia reads) opened for decoding. Opening reads
/// only the header: dimensions are checked against the pixel limit before any pixel is decoded.
/// Decoding goes through Skia's codec (libjpeg-turbo, libpng, libwebp) straight into RGBA buffers the
/// caller reuses; grayscale, CMYK, palette, 16-bit and alpha inputs come out as 8-bit RGBA (alpha is
/// then ignored, as PIL's convert("RGB") does). Every failure is a <see cref="BadSampleException"/>.
/// </summary>
public sealed unsafe class EncodedImage : IDisposable
{
    private MemoryHandle _pin;
    private readonly SKData _data;
    private readonly SKCodec _codec;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly SKAlphaType _alphaType;

    public int Width { get; }
    public int Height { get; }
    public SKEncodedOrigin Origin { get; }
    public SKEncodedImageFormat Format { get; }
    public bool IsJpeg => Format == SKEncodedImageFormat.Jpeg;
    public bool IsUpright => Origin == SKEncodedOrigin.TopLeft;
    /// <summary>Width as displayed, after EXIF orientation.</summary>
    public int OrientedWidth => Orientation.SwapsAxes(Origin) ? Height : Width;
    /// <summary>Height as displayed, after EXIF orientation.</summary>
    public int OrientedHeight => Orientation.SwapsAxes(Origin) ? Width : Height;

    private EncodedImage(ReadOnlyMemory<byte> bytes, MemoryHandle pin, SKData data, SKCodec codec)
    {
        _bytes = bytes;
        _pin = pin;
        _data = data;
        _codec = codec;
        var info = codec.Info;
        Width = info.Width;
        Height = info.Height;
        Origin = codec.EncodedOrigin;
        Format = codec.EncodedFormat;
        // Opaque sources (JPEG) skip alpha handling; others keep straight (unpremultiplied) colour,
        // as PIL's convert("RGB") does.
        _alphaType = info.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
    }

    /// <summary>Reads the header and checks the limits. The bytes must stay unchanged until Dispose.</summary>
    public static EncodedImage Open(ReadOnlyMemory<byte> bytes, DecodeOptions options)
    {
        if (bytes.Length == 0)
            throw new BadSampleException(BadReason.EmptyFile, "the image file is empty (0 bytes)");
        if (bytes.Length > options.MaxEncodedBytes)
            throw new BadSampleException(BadReason.FileTooLarge, $"{bytes.Length:N0} bytes is above the limit of {options.MaxEncodedBytes:N0} (decode.max-file-bytes)");
        var pin = bytes.Pin();
        SKData data;
        try
        {
            // Wraps the caller's memory without a copy; it stays pinned while the codec lives.
            data = SKData.Create((IntPtr)pin.Pointer, bytes.Length);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
        var codec = SKCodec.Create(data);
        if (codec is null)
        {
            data.Dispose();
            pin.Dispose();
            throw Unopenable(bytes.Span);
        }
        var image = new EncodedImage(bytes, pin, data, codec);
        try
        {
            image.CheckHeader(options);
        }
        catch
        {
            image.Dispose();
            throw;
        }
        return image;
    }

    private void CheckHeader(DecodeOptions options)
    {
        if (Width <= 0 || Height <= 0)
            throw new BadSampleException(BadReason.CorruptImage, $"the header gives a size of {Width}x{Height}");
        long pixels = (long)Width * Height;
        if (pixels > options.MaxPixels)
            throw new BadSampleException(BadReason.TooManyPixels,
                $"{Width}x{Height} = {pixels / 1e6:F1} MP is above the limit of {options.MaxPixels / 1e6:F1} MP (decode.max-pixels)");
        if (IsJpeg && !JpegCompleteness.HasEndOfImage(_bytes.Span))
            throw new BadSampleException(BadReason.TruncatedImage, "the JPEG data ends before its end-of-image marker (file cut short)");
    }

    /// <summary>Stored (not oriented) size when a JPEG is decoded at <paramref name="eighths"/>/8 scale.</summary>
    public (int Width, int Height) ScaledSize(int eighths)
    {
        if (eighths == 8 || !IsJpeg) return (Width, Height);
        var size = _codec.GetScaledDimensions(eighths / 8f);
        return (size.Width, size.Height);
    }

    /// <summary>
    /// The smallest JPEG scale n/8 (n = 1, 2 or 4) whose oriented size is at least
    /// <paramref name="minWidth"/> × <paramref name="minHeight"/> (8 = full size; always 8 for other
    /// formats). Only power-of-two scales are used: measured against a full decode + bicubic
    /// resize, libjpeg's 3/8, 5/8, 6/8 and 7/8 outputs were clearly less faithful (e.g. 30–32 dB PSNR
    /// where 1/2 and 1/4 gave 46–48 dB).
    /// </summary>
    public int ChooseScale(double minWidth, double minHeight)
    {
        if (!IsJpeg) return 8;
        foreach (int n in (ReadOnlySpan<int>)[1, 2, 4])
        {
            var (w, h) = ScaledSize(n);
            if (Orientation.SwapsAxes(Origin)) (w, h) = (h, w);
            if (w >= minWidth && h >= minHeight) return n;
        }
        return 8;
    }

    /// <summary>Decodes the whole image at n/8 scale, upright (EXIF orientation applied).</summary>
    public void DecodeUpright(int eighths, RgbaRegion dst, RgbaRegion scratch)
    {
        if (IsUpright)
        {
            DecodeStored(eighths, dst);
            return;
        }
        DecodeStored(eighths, scratch);
        Orientation.Apply(Origin, scratch, dst);
    }

    /// <summary>Decodes the whole stored image (no orientation) at n/8 scale.</summary>
    public void DecodeStored(int eighths, RgbaRegion dst)
    {
        var (w, h) = ScaledSize(eighths);
        dst.ResetFull(w, h);
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, _alphaType);
        SKCodecResult result;
        fixed (byte* p = dst.Data)
            result = _codec.GetPixels(info, (IntPtr)p, w * 4, SKCodecOptions.Default);
        ThrowIfFailed(result);
    }

    /// <summary>
    /// Decodes only rows [y0, y1) and columns [x0, x1) of an upright JPEG at n/8 scale, through
    /// libjpeg-turbo's scanline API: rows above are skipped without colour conversion, rows below are
    /// never decoded, columns outside are cropped inside libjpeg. Other images decode whole.
    /// </summary>
    private const int WindowMargin = 4;

    public void DecodeWindow(int eighths, int x0, int y0, int x1, int y1, RgbaRegion dst, RgbaRegion scratch)
    {
        var (w, h) = ScaledSize(eighths);
        if (!IsJpeg || !IsUpright)
        {
            DecodeUpright(eighths, dst, scratch);
            return;
        }
        // libjpeg's cropped decode treats the first and last column of its span as image edges when it
        // upsamples chroma, so those pixels differ from a full decode. A few spare columns on each
        // side keep the wanted window bit-identical to the full decode.
        x0 = Math.Max(0, x0 - WindowMargin);
        x1 = Math.Min(w, x1 + WindowMargin);
        dst.Reset(w, h, x0, y0, x1 - x0, y1 - y0);
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, _alphaType);
        var start = _codec.StartScanlineDecode(info, new SKCodecOptions(new SKRectI(x0, 0, x1, h)));
        if (start != SKCodecResult.Success)
        {
            DecodeStored(eighths, dst);
            return;
        }
        if (y0 > 0 && !_codec.SkipScanlines(y0))
            throw new BadSampleException(BadReason.TruncatedImage, $"JPEG data ends before row {y0} of {h}");
        int rows = y1 - y0, got;
        fixed (byte* p = dst.Data)
            got = _codec.GetScanlines((IntPtr)p, rows, (x1 - x0) * 4);
        if (got < rows)
            throw new BadSampleException(BadReason.TruncatedImage, $"JPEG data ends after {y0 + got} of {h} rows");
    }

    private static void ThrowIfFailed(SKCodecResult result)
    {
        switch (result)
        {
            case SKCodecResult.Success:
                return;
            case SKCodecResult.IncompleteInput:
                throw new BadSampleException(BadReason.TruncatedImage, "the image data ends early (incomplete input)");
            case SKCodecResult.ErrorInInput:
            case SKCodecResult.InvalidInput:
                throw new BadSampleException(BadReason.CorruptImage, $"the decoder rejected the data ({result})");
            default:
                throw new BadSampleException(BadReason.CorruptImage, $"the image cannot be decoded ({result})");
        }
    }

    /// <summary>Why Skia could not even read the header: a known signature means a damaged or cut file.</summary>
    private static BadSampleException Unopenable(ReadOnlySpan<byte> b)
    {
        if (b.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return JpegCompleteness.HasEndOfImage(b)
                ? new BadSampleException(BadReason.CorruptImage, "the JPEG header is damaged")
                : new BadSampleException(BadReason.TruncatedImage, "the JPEG file is cut short (ends inside its header)");
        if (b.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G']))
            return b.Length >= 12 && b[^8..^4].SequenceEqual("IEND"u8)
                ? new BadSampleException(BadReason.CorruptImage, "the PNG header is damaged")
                : new BadSampleException(BadReason.TruncatedImage, "the PNG file is cut short (no IEND chunk)");
        if (b.Length >= 12 && b.StartsWith("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8))
            return new BadSampleException(BadReason.CorruptImage, "the WebP header is damaged or cut short");
        return new BadSampleException(BadReason.NotAnImage, $"no decoder recognises the data (starts with {Preview(b)})");
    }

    private static string Preview(ReadOnlySpan<byte> bytes)
    {
        var head = bytes[..Math.Min(8, bytes.Length)];
        return string.Join(' ', head.ToArray().Select(b => b.ToString("X2")));
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _codec.Dispose();
        _data.Dispose();
        _pin.Dispose();
    }
}
