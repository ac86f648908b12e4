using LiteVae.Data.Decoding;
using LiteVae.Data.Imaging;
using LiteVae.Data.Resampling;
using LiteVae.Data.Tests.Support;

namespace LiteVae.Data.Tests.Resampling;

public sealed class ResamplerTests
{
    [Theory]
    [InlineData(30, 20)]
    [InlineData(31, 21)]
    [InlineData(67, 20)]
    [InlineData(13, 45)]
    [InlineData(100, 70)]
    [InlineData(200, 11)]
    [InlineData(67, 45)]
    [InlineData(7, 5)]
    public void Bicubic_resize_matches_PIL_bit_for_bit(int w, int h)
    {
        var src = Decode("rgb.png");
        var dst = new byte[3 * w * h];
        Resampler.ResizeCropPlanar(src, w, h, 0, 0, w, h, flip: false, dst, new ResampleScratch());
        var (_, _, expected) = Fixtures.Raw($"resize_{w}x{h}.rgb");
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, Fixtures.PlanarToInterleaved(dst, w, h)));
    }

    [Fact]
    public void Larger_image_resize_matches_PIL()
    {
        var src = Decode("big.jpg");
        var dst = new byte[3 * 123 * 91];
        Resampler.ResizeCropPlanar(src, 123, 91, 0, 0, 123, 91, false, dst, new ResampleScratch());
        var (_, _, expected) = Fixtures.Raw("big_resize_123x91.rgb");
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, Fixtures.PlanarToInterleaved(dst, 123, 91)));
    }

    [Theory]
    [InlineData(30, 20, 5, 3, 17, 11, false)]
    [InlineData(100, 70, 40, 12, 33, 50, true)]
    [InlineData(67, 20, 10, 0, 50, 20, true)]
    [InlineData(13, 45, 0, 30, 13, 15, false)]
    public void A_crop_of_the_resize_equals_the_window_of_the_full_PIL_resize(int w, int h, int cx, int cy, int cw, int ch, bool flip)
    {
        var src = Decode("rgb.png");
        var dst = new byte[3 * cw * ch];
        Resampler.ResizeCropPlanar(src, w, h, cx, cy, cw, ch, flip, dst, new ResampleScratch());
        var (_, _, full) = Fixtures.Raw($"resize_{w}x{h}.rgb");
        var got = Fixtures.PlanarToInterleaved(dst, cw, ch);
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
                for (int c = 0; c < 3; c++)
                {
                    int sx = cx + (flip ? cw - 1 - x : x);
                    Assert.Equal(full[((cy + y) * w + sx) * 3 + c], got[(y * cw + x) * 3 + c]);
                }
    }

    [Fact]
    public void Only_the_source_window_is_needed()
    {
        var full = Decode("big.jpg");
        var scratch = new ResampleScratch();
        var (x0, y0, x1, y1) = Resampler.SourceWindow(400, 300, 250, 187, 60, 40, 64, 64, scratch);
        Assert.True(x0 > 0 && y0 > 0 && x1 < 400 && y1 < 300);
        // Copy just that window into a region and resample from it: same bytes as from the full image.
        var window = new RgbaRegion();
        window.Reset(400, 300, x0, y0, x1 - x0, y1 - y0);
        for (int y = y0; y < y1; y++)
            Array.Copy(full.Data, (y * 400 + x0) * 4, window.Data, ((y - y0) * (x1 - x0)) * 4, (x1 - x0) * 4);
        var a = new byte[3 * 64 * 64];
        var b = new byte[3 * 64 * 64];
        Resampler.ResizeCropPlanar(full, 250, 187, 60, 40, 64, 64, false, a, scratch);
        Resampler.ResizeCropPlanar(window, 250, 187, 60, 40, 64, 64, false, b, scratch);
        Assert.Equal(a, b);
        // A window one pixel too small is refused rather than read out of bounds.
        var small = new RgbaRegion();
        small.Reset(400, 300, x0 + 1, y0, x1 - x0 - 1, y1 - y0);
        Assert.Throws<ArgumentException>(() => Resampler.ResizeCropPlanar(small, 250, 187, 60, 40, 64, 64, false, b, scratch));
    }

    [Fact]
    public void Weights_sum_to_one_and_a_constant_image_stays_constant()
    {
        var w = new AxisWeights();
        foreach (var (inSize, outSize) in new[] { (1000, 7), (7, 1000), (513, 256), (256, 513), (3, 2) })
        {
            w.Compute(inSize, outSize, 0, outSize);
            for (int i = 0; i < outSize; i++)
            {
                long sum = 0;
                for (int t = 0; t < w.Length[i]; t++) sum += w.Weights[i * w.Taps + t];
                Assert.InRange(sum, (1 << AxisWeights.PrecisionBits) - w.Taps, (1 << AxisWeights.PrecisionBits) + w.Taps);
            }
        }
        var flat = new RgbaRegion();
        flat.ResetFull(97, 61);
        for (int i = 0; i < 97 * 61; i++) { flat.Data[i * 4] = 200; flat.Data[i * 4 + 1] = 17; flat.Data[i * 4 + 2] = 255; flat.Data[i * 4 + 3] = 255; }
        var dst = new byte[3 * 40 * 150];
        Resampler.ResizeCropPlanar(flat, 40, 150, 0, 0, 40, 150, false, dst, new ResampleScratch());
        Assert.All(dst.AsSpan(0, 6000).ToArray(), v => Assert.Equal(200, v));
        Assert.All(dst.AsSpan(6000, 6000).ToArray(), v => Assert.Equal(17, v));
        Assert.All(dst.AsSpan(12000, 6000).ToArray(), v => Assert.Equal(255, v));
    }

    internal static RgbaRegion Decode(string file)
    {
        using var image = EncodedImage.Open(Fixtures.Bytes(file), DecodeOptions.Default);
        var region = new RgbaRegion();
        image.DecodeUpright(8, region, new RgbaRegion());
        return region;
    }
}
