using LiteVae.Data.Decoding;
using SkiaSharp;

namespace LiteVae.Data.Imaging;

/// <summary>Reads and writes single image files for the CLI (encode, decode, reconstruct, grids).</summary>
public static class ImageFile
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".webp"];

    public static bool IsImagePath(string path) =>
        Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// Decodes a PNG/JPEG/WebP file to upright RGB uint8 (EXIF orientation applied; gray, CMYK, palette,
    /// 16-bit and alpha inputs converted, alpha dropped). Throws InvalidDataException naming the file.
    /// </summary>
    public static RgbImage Read(string path) => Read(path, DecodeOptions.Default);

    public static RgbImage Read(string path, DecodeOptions options)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found.", path);
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return Decode(bytes, options);
        }
        catch (BadSampleException e)
        {
            throw new InvalidDataException($"{path}: not a readable image ({e.Message}).", e);
        }
    }

    /// <summary>Decodes encoded image bytes to upright RGB. Throws <see cref="BadSampleException"/>.</summary>
    public static RgbImage Decode(ReadOnlyMemory<byte> bytes, DecodeOptions? options = null)
    {
        using var image = EncodedImage.Open(bytes, options ?? DecodeOptions.Default);
        var decoded = new RgbaRegion();
        image.DecodeUpright(8, decoded, new RgbaRegion());
        var result = RgbImage.Create(decoded.Width, decoded.Height);
        var src = decoded.Data.AsSpan(0, decoded.Width * decoded.Height * 4);
        var dst = result.Pixels.AsSpan();
        for (int i = 0, j = 0; j < dst.Length; i += 4, j += 3)
        {
            dst[j] = src[i];
            dst[j + 1] = src[i + 1];
            dst[j + 2] = src[i + 2];
        }
        return result;
    }

    /// <summary>Writes an RGB image as PNG, creating the folder if needed.</summary>
    public static void WritePng(string path, RgbImage image)
    {
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var dst = bitmap.GetPixelSpan();
        var src = image.Pixels.AsSpan();
        for (int i = 0, j = 0; j < src.Length; i += 4, j += 3)
        {
            dst[i] = src[j];
            dst[i + 1] = src[j + 1];
            dst[i + 2] = src[j + 2];
            dst[i + 3] = 255;
        }
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }
}
