namespace LiteVae.Data.Imaging;

/// <summary>An 8-bit RGB image, pixels interleaved row-major (H x W x 3).</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public static RgbImage Create(int width, int height) => new(width, height, new byte[checked(width * height * 3)]);
}
