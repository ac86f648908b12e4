namespace LiteVae.Data.Decoding;

/// <summary>
/// Decoded pixels (RGBA, 4 bytes each, row-major, no padding) of the window
/// [<see cref="X"/>, X + <see cref="Width"/>) × [<see cref="Y"/>, Y + <see cref="Height"/>) of an image of
/// <see cref="FullWidth"/> × <see cref="FullHeight"/> pixels. Often the window is the whole image; a
/// training crop needs only part of it, and decoding only that part saves time. The buffer is reused
/// between images (one per worker), so it grows but is not reallocated per sample.
/// </summary>
public sealed class RgbaRegion
{
    private byte[] _data = [];

    public int FullWidth { get; private set; }
    public int FullHeight { get; private set; }
    public int X { get; private set; }
    public int Y { get; private set; }
    public int Width { get; private set; }
    public int Height { get; private set; }
    public int Stride => Width * 4;
    public byte[] Data => _data;

    /// <summary>Sets the geometry and makes sure the buffer holds Width × Height × 4 bytes.</summary>
    public void Reset(int fullWidth, int fullHeight, int x, int y, int width, int height)
    {
        if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > fullWidth || y + height > fullHeight)
            throw new ArgumentOutOfRangeException(nameof(width), $"window {x},{y} {width}x{height} does not fit {fullWidth}x{fullHeight}");
        FullWidth = fullWidth;
        FullHeight = fullHeight;
        X = x;
        Y = y;
        Width = width;
        Height = height;
        long need = (long)width * height * 4;
        if (need > Array.MaxLength)
            throw new BadSampleException(BadReason.TooManyPixels, $"{width}x{height} pixels do not fit one buffer");
        if (_data.Length < need)
            _data = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, Math.Max(need, _data.Length * 3L / 2)), pinned: true);
    }

    public void ResetFull(int width, int height) => Reset(width, height, 0, 0, width, height);

    public bool CoversWholeImage => X == 0 && Y == 0 && Width == FullWidth && Height == FullHeight;

    /// <summary>Pixel (x, y) in full-image coordinates as R, G, B.</summary>
    public (byte R, byte G, byte B) At(int x, int y)
    {
        int i = ((y - Y) * Width + (x - X)) * 4;
        return (_data[i], _data[i + 1], _data[i + 2]);
    }
}
