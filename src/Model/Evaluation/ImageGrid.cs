namespace LiteVae.Model.Evaluation;

/// <summary>An interleaved RGB image (row-major, 3 bytes per pixel), ready for a PNG writer.</summary>
public sealed record RgbPixels(int Width, int Height, byte[] Pixels);

/// <summary>
/// The reconstruction grid of a report: originals in the top row, their reconstructions right below,
/// one column per image, <see cref="Gap"/> pixels of white between cells (so image borders stay visible).
/// </summary>
public static class ImageGrid
{
    public const int Gap = 4;

    /// <summary>Grid of the pairs (planar 3 x H x W bytes each); width = n·W + (n−1)·Gap, height = 2·H + Gap.</summary>
    public static RgbPixels Compose(IReadOnlyList<ImagePair> pairs, int height, int width)
    {
        if (pairs.Count == 0) throw new ArgumentException("a grid needs at least one image.", nameof(pairs));
        int plane = height * width;
        int columns = pairs.Count;
        int gridWidth = columns * width + (columns - 1) * Gap, gridHeight = 2 * height + Gap;
        var pixels = new byte[(long)gridWidth * gridHeight * 3];
        Array.Fill(pixels, (byte)255);
        for (int c = 0; c < columns; c++)
        {
            var pair = pairs[c];
            if (pair.Original.Length != 3 * plane || pair.Reconstruction.Length != 3 * plane)
                throw new ArgumentException($"image {pair.Key} is not 3 x {height} x {width}.");
            for (int row = 0; row < 2; row++)
            {
                var source = row == 0 ? pair.Original : pair.Reconstruction;
                int top = row * (height + Gap), left = c * (width + Gap);
                for (int y = 0; y < height; y++)
                {
                    int dst = ((top + y) * gridWidth + left) * 3;
                    int src = y * width;
                    for (int x = 0; x < width; x++, dst += 3, src++)
                    {
                        pixels[dst] = source[src];
                        pixels[dst + 1] = source[src + plane];
                        pixels[dst + 2] = source[src + 2 * plane];
                    }
                }
            }
        }
        return new RgbPixels(gridWidth, gridHeight, pixels);
    }
}
