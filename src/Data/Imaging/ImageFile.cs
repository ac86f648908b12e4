using SkiaSharp;

namespace LiteVae.Data.Imaging;

/// <summary>Reads and writes single image files for the CLI (encode, decode, reconstruct, grids).</summary>
public static class ImageFile
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".webp"];

    public static bool IsImagePath(string path) =>
        Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Decodes a PNG/JPEG/WebP file to RGB uint8. Throws InvalidDataException naming the file.</summary>
    public static RgbImage Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found.", path);
        using var bitmap = SKBitmap.Decode(path)
            ?? throw new InvalidDataException($"{path}: not a readable image (PNG, JPEG or WebP expected).");
        return FromBitmap(bitmap);
    }

    internal static RgbImage FromBitmap(SKBitmap bitmap)
    {
        using var rgba = bitmap.ColorType == SKColorType.Rgba8888 && bitmap.AlphaType != SKAlphaType.Premul
            ? bitmap.Copy()
            : ConvertToRgba(bitmap);
        var image = RgbImage.Create(rgba.Width, rgba.Height);
        var src = rgba.GetPixelSpan();
        var dst = image.Pixels.AsSpan();
        for (int i = 0, j = 0; j < dst.Length; i += 4, j += 3)
        {
            dst[j] = src[i];
            dst[j + 1] = src[i + 1];
            dst[j + 2] = src[i + 2];
        }
        return image;
    }

    private static SKBitmap ConvertToRgba(SKBitmap bitmap)
    {
        var info = new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var result = new SKBitmap(info);
        using var canvas = new SKCanvas(result);
        canvas.Clear(SKColors.Black);
        canvas.DrawBitmap(bitmap, 0, 0);
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
