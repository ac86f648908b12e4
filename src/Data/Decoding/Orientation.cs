using SkiaSharp;

namespace LiteVae.Data.Decoding;

/// <summary>
/// EXIF orientation: maps the stored pixels to the upright image a viewer shows. For each upright
/// pixel (xd, yd) the stored pixel is found with the inverse mapping of the eight EXIF cases.
/// </summary>
public static class Orientation
{
    /// <summary>True for the four orientations that swap width and height (EXIF 5–8).</summary>
    public static bool SwapsAxes(SKEncodedOrigin origin) =>
        origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>Writes the upright version of <paramref name="stored"/> (a whole image) into <paramref name="upright"/>.</summary>
    public static unsafe void Apply(SKEncodedOrigin origin, RgbaRegion stored, RgbaRegion upright)
    {
        if (!stored.CoversWholeImage)
            throw new ArgumentException("orientation needs the whole stored image", nameof(stored));
        int ws = stored.Width, hs = stored.Height;
        int wd = SwapsAxes(origin) ? hs : ws, hd = SwapsAxes(origin) ? ws : hs;
        upright.ResetFull(wd, hd);
        fixed (byte* sp = stored.Data)
        fixed (byte* dp = upright.Data)
        {
            uint* s = (uint*)sp, d = (uint*)dp;
            for (int yd = 0; yd < hd; yd++)
            {
                uint* row = d + (long)yd * wd;
                for (int xd = 0; xd < wd; xd++)
                {
                    (int xs, int ys) = origin switch
                    {
                        SKEncodedOrigin.TopRight => (ws - 1 - xd, yd),            // 2: mirrored
                        SKEncodedOrigin.BottomRight => (ws - 1 - xd, hs - 1 - yd), // 3: rotated 180°
                        SKEncodedOrigin.BottomLeft => (xd, hs - 1 - yd),           // 4: flipped vertically
                        SKEncodedOrigin.LeftTop => (yd, xd),                       // 5: transposed
                        SKEncodedOrigin.RightTop => (yd, hs - 1 - xd),             // 6: needs 90° clockwise
                        SKEncodedOrigin.RightBottom => (ws - 1 - yd, hs - 1 - xd), // 7: transversed
                        SKEncodedOrigin.LeftBottom => (ws - 1 - yd, xd),           // 8: needs 90° anticlockwise
                        _ => (xd, yd),
                    };
                    row[xd] = s[(long)ys * ws + xs];
                }
            }
        }
    }
}
