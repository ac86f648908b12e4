using LiteVae.Data.Decoding;
using LiteVae.Data.Imaging;
using LiteVae.Data.Tests.Support;

namespace LiteVae.Data.Tests.Decoding;

public sealed class DecoderTests
{
    [Theory]
    [InlineData("baseline.jpg")]
    [InlineData("progressive.jpg")]
    [InlineData("gray.jpg")]
    [InlineData("cmyk.jpg")]
    [InlineData("big.jpg")]
    [InlineData("rgb.png")]
    [InlineData("rgba.png")]
    [InlineData("palette.png")]
    [InlineData("lossless.webp")]
    public void Decodes_exactly_what_PIL_decodes(string file)
    {
        var image = ImageFile.Decode(Fixtures.Bytes(file));
        var (w, h, expected) = Fixtures.Raw(file + ".rgb");
        Assert.Equal((w, h), (image.Width, image.Height));
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, image.Pixels));
    }

    [Fact]
    public void Sixteen_bit_png_is_scaled_to_eight_bits_not_clipped()
    {
        var image = ImageFile.Decode(Fixtures.Bytes("gray16.png"));
        var (_, _, expected) = Fixtures.Raw("gray16.png.rgb");
        // Expected is round(v / 257); Skia may round the last bit differently.
        Assert.True(Fixtures.MaxAbsDiff(expected, image.Pixels) <= 1);
    }

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)]
    public void Exif_orientation_gives_the_upright_image(int orientation)
    {
        string file = $"orient{orientation}.jpg";
        var image = ImageFile.Decode(Fixtures.Bytes(file));
        var (w, h, expected) = Fixtures.Raw(file + ".rgb");
        Assert.Equal((w, h), (image.Width, image.Height));
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, image.Pixels));
    }

    [Theory]
    [InlineData(4, 2)]
    [InlineData(2, 4)]
    [InlineData(1, 8)]
    public void Scaled_jpeg_decode_matches_PIL_draft(int eighths, int pilDenominator)
    {
        using var image = EncodedImage.Open(Fixtures.Bytes("big.jpg"), DecodeOptions.Default);
        var region = new RgbaRegion();
        image.DecodeStored(eighths, region);
        var (w, h, expected) = Fixtures.Raw($"big.jpg.draft{pilDenominator}.rgb");
        Assert.Equal((w, h), (region.Width, region.Height));
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, ToRgb(region)));
    }

    [Theory]
    [InlineData(8, 0, 0, 400, 300)]
    [InlineData(8, 37, 101, 250, 180)]
    [InlineData(8, 399, 299, 400, 300)]
    [InlineData(5, 13, 7, 190, 120)]
    [InlineData(3, 21, 33, 101, 90)]
    [InlineData(8, 16, 16, 32, 32)]
    public void Window_decode_equals_the_same_window_of_a_full_decode(int eighths, int x0, int y0, int x1, int y1)
    {
        using var image = EncodedImage.Open(Fixtures.Bytes("big.jpg"), DecodeOptions.Default);
        var (w, h) = image.ScaledSize(eighths);
        x1 = Math.Min(x1, w);
        y1 = Math.Min(y1, h);
        var full = new RgbaRegion();
        image.DecodeStored(eighths, full);
        var window = new RgbaRegion();
        image.DecodeWindow(eighths, x0, y0, x1, y1, window, new RgbaRegion());
        Assert.True(window.X <= x0 && window.Y == y0 && window.X + window.Width >= x1 && window.Height == y1 - y0);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                Assert.Equal(full.At(x, y), window.At(x, y));
    }

    [Fact]
    public void Header_is_read_without_decoding_and_pixel_limit_applies_before_decoding()
    {
        // A PNG header that claims 30000 x 30000 pixels followed by no image data at all: it can only
        // be rejected from the header, because there is nothing to decode.
        byte[] png = BadImages.PngHeaderOnly(30000, 30000);
        var e = Assert.Throws<BadSampleException>(() => EncodedImage.Open(png, DecodeOptions.Default));
        Assert.Equal(BadReason.TooManyPixels, e.Reason);
        Assert.Contains("30000x30000", e.Detail);

        byte[] jpeg = BadImages.JpegWithSize(Fixtures.Bytes("baseline.jpg"), 30000, 30000);
        e = Assert.Throws<BadSampleException>(() => EncodedImage.Open(jpeg, DecodeOptions.Default));
        Assert.Equal(BadReason.TooManyPixels, e.Reason);

        using var ok = EncodedImage.Open(Fixtures.Bytes("baseline.jpg"), DecodeOptions.Default with { MaxPixels = 67 * 45 });
        Assert.Throws<BadSampleException>(() => EncodedImage.Open(Fixtures.Bytes("baseline.jpg"), DecodeOptions.Default with { MaxPixels = 67 * 45 - 1 }));
    }

    [Fact]
    public void Bad_files_fail_with_their_reason()
    {
        byte[] jpeg = Fixtures.Bytes("baseline.jpg");
        byte[] png = Fixtures.Bytes("rgb.png");
        byte[] progressive = Fixtures.Bytes("progressive.jpg");
        Assert.Equal(BadReason.EmptyFile, ReasonOf([]));
        Assert.Equal(BadReason.NotAnImage, ReasonOf("this is a text file named .jpg\n"u8.ToArray()));
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(jpeg[..(jpeg.Length / 2)]));
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(jpeg[..(jpeg.Length - 2)]));
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(progressive[..(progressive.Length / 2)]));
        Assert.Equal(BadReason.CorruptImage, ReasonOf(BadImages.PngWithWrongIdatCrc(png)));
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(png[..(png.Length / 2)]));
        // Cut inside the headers, so no decoder even opens it: still "truncated", not "not an image".
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(jpeg[..200]));
        Assert.Equal(BadReason.TruncatedImage, ReasonOf(png[..20]));
        Assert.Equal(BadReason.FileTooLarge, ReasonOf(jpeg, DecodeOptions.Default with { MaxEncodedBytes = 100 }));
    }

    [Fact]
    public void Jpeg_completeness_check_finds_the_end_marker_only_after_the_last_scan()
    {
        byte[] jpeg = Fixtures.Bytes("progressive.jpg");
        Assert.True(JpegCompleteness.HasEndOfImage(jpeg));
        // Trailing bytes after EOI (some cameras append data) are fine.
        Assert.True(JpegCompleteness.HasEndOfImage([.. jpeg, 0, 0, 0, 0]));
        // Every cut inside the scan data is detected.
        for (int cut = jpeg.Length - 2; cut > jpeg.Length / 2; cut -= 97)
            Assert.False(JpegCompleteness.HasEndOfImage(jpeg.AsSpan(0, cut)));
    }

    [Fact]
    public void ImageFile_read_names_the_file_on_errors()
    {
        string dir = Fixtures.TempDir("imagefile");
        try
        {
            string bad = Path.Combine(dir, "bad.jpg");
            File.WriteAllText(bad, "not a jpeg");
            var e = Assert.Throws<InvalidDataException>(() => ImageFile.Read(bad));
            Assert.Contains("bad.jpg", e.Message);
            Assert.Contains("not-an-image", e.Message);
            var image = ImageFile.Read(Fixtures.Image("orient6.jpg"));
            Assert.Equal((45, 67), (image.Width, image.Height));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static BadReason ReasonOf(byte[] bytes, DecodeOptions? options = null)
    {
        var e = Assert.Throws<BadSampleException>(() =>
        {
            using var image = EncodedImage.Open(bytes, options ?? DecodeOptions.Default);
            image.DecodeStored(8, new RgbaRegion());
        });
        return e.Reason;
    }

    internal static byte[] ToRgb(RgbaRegion region)
    {
        var rgb = new byte[region.Width * region.Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = region.Data[i];
            rgb[j + 1] = region.Data[i + 1];
            rgb[j + 2] = region.Data[i + 2];
        }
        return rgb;
    }
}
