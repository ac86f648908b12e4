using LiteVae.Data.Decoding;
using LiteVae.Data.Resampling;
using LiteVae.Data.Tests.Support;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Tests.Transforms;

public sealed class TransformTests
{
    [Theory]
    [InlineData("rgb.png", 32)]
    [InlineData("big.jpg", 64)]
    [InlineData("orient6.jpg", 24)]
    [InlineData("big.jpg", 37)]
    public void Eval_transform_equals_torchvision_resize_and_center_crop(string file, int r)
    {
        var transform = new EvalTransform(r, DecodeOptions.Default);
        var dst = new byte[3 * r * r];
        transform.Apply(Fixtures.Bytes(file), default, dst, new TransformScratch());
        var (_, _, expected) = Fixtures.Raw($"eval_{file}_{r}.rgb");
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, Fixtures.PlanarToInterleaved(dst, r, r)));
    }

    [Fact]
    public void Rescale_draws_stay_in_range_and_follow_the_log_uniform_law()
    {
        var t = new TrainTransform(64, new RescaleOptions { MaxRatio = 4 }, DecodeOptions.Default);
        var logs = new List<double>();
        int flips = 0;
        for (int i = 0; i < 4000; i++)
        {
            var p = t.Plan(1000, 700, new SampleKey(1, 0, i));
            int shortSide = Math.Min(p.ResizedWidth, p.ResizedHeight);
            Assert.InRange(shortSide, 64, 256);
            Assert.Equal(1000.0 / 700, (double)p.ResizedWidth / p.ResizedHeight, 1);
            Assert.InRange(p.X, 0, p.ResizedWidth - 64);
            Assert.InRange(p.Y, 0, p.ResizedHeight - 64);
            logs.Add(Math.Log((double)shortSide / 64) / Math.Log(4)); // uniform on [0, 1] under the law
            flips += p.Flip ? 1 : 0;
        }
        Assert.InRange(logs.Average(), 0.48, 0.52);
        Assert.InRange(logs.Count(x => x < 0.25), 900, 1100); // each quarter-octave-range ~ 1/4
        Assert.InRange(flips, 1850, 2150);
        // Deterministic per key, different across keys and epochs.
        Assert.Equal(t.Plan(1000, 700, new SampleKey(1, 0, 5)), t.Plan(1000, 700, new SampleKey(1, 0, 5)));
        Assert.NotEqual(t.Plan(1000, 700, new SampleKey(1, 0, 5)), t.Plan(1000, 700, new SampleKey(1, 1, 5)));
    }

    [Fact]
    public void Small_images_are_enlarged_to_the_resolution_and_native_size_caps_the_zoom()
    {
        var t = new TrainTransform(64, new RescaleOptions { MaxRatio = 4 }, DecodeOptions.Default);
        var small = t.Plan(40, 50, new SampleKey(0, 0, 1));
        Assert.Equal((64, 80), (small.ResizedWidth, small.ResizedHeight));
        for (int i = 0; i < 200; i++)
            Assert.InRange(Math.Min(t.Plan(100, 90, new SampleKey(0, 0, i)).ResizedWidth, t.Plan(100, 90, new SampleKey(0, 0, i)).ResizedHeight), 64, 90);
        var fixedView = new TrainTransform(64, new RescaleOptions { Distribution = RescaleDistribution.Fixed }, DecodeOptions.Default);
        Assert.Equal(64, fixedView.Plan(500, 300, new SampleKey(0, 0, 3)).ResizedHeight);
    }

    [Fact]
    public void Train_transform_without_jpeg_scaling_equals_a_full_decode_resize_and_crop()
    {
        byte[] jpeg = Fixtures.Bytes("big.jpg");
        var t = new TrainTransform(48, new RescaleOptions(), DecodeOptions.Default with { JpegScaledDecode = false });
        using var image = EncodedImage.Open(jpeg, DecodeOptions.Default);
        var full = new RgbaRegion();
        image.DecodeUpright(8, full, new RgbaRegion());
        var scratch = new TransformScratch();
        for (int i = 0; i < 20; i++)
        {
            var key = new SampleKey(3, 0, i);
            var plan = t.Plan(400, 300, key);
            var expected = new byte[3 * 48 * 48];
            Resampler.ResizeCropPlanar(full, plan.ResizedWidth, plan.ResizedHeight, plan.X, plan.Y, 48, 48, plan.Flip, expected, new ResampleScratch());
            var got = new byte[3 * 48 * 48];
            t.Apply(jpeg, key, got, scratch); // decodes only the window the crop needs
            Assert.Equal(expected, got);
        }
    }

    [Fact]
    public void Scaled_jpeg_decoding_stays_close_to_the_full_decode()
    {
        byte[] jpeg = Fixtures.Bytes("big.jpg");
        var exact = new TrainTransform(32, new RescaleOptions { Distribution = RescaleDistribution.Fixed }, DecodeOptions.Default with { JpegScaledDecode = false });
        var fast = new TrainTransform(32, new RescaleOptions { Distribution = RescaleDistribution.Fixed }, DecodeOptions.Default);
        var a = new byte[3 * 32 * 32];
        var b = new byte[3 * 32 * 32];
        double mse = 0;
        for (int i = 0; i < 10; i++)
        {
            exact.Apply(jpeg, new SampleKey(0, 0, i), a, new TransformScratch());
            fast.Apply(jpeg, new SampleKey(0, 0, i), b, new TransformScratch());
            for (int k = 0; k < a.Length; k++) mse += (a[k] - b[k]) * (a[k] - b[k]);
        }
        mse /= 10.0 * a.Length;
        double psnr = 10 * Math.Log10(255.0 * 255.0 / Math.Max(mse, 1e-9));
        Assert.True(psnr > 40, $"PSNR {psnr:F1} dB");
        Assert.True(mse > 0, "300 px → 32 px should use a reduced JPEG scale");
    }
}
