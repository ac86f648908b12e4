using LiteVae.Model.Metrics;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Metrics;

/// <summary>PSNR, SSIM and MS-SSIM against scikit-image and an independent numpy MS-SSIM.</summary>
public class ImageMetricTests
{
    public static TheoryData<string> PairNames() =>
        new(MetricFixtureData.Expected.GetProperty("psnr_ssim").GetProperty("pairs").EnumerateArray().Select(p => p.GetProperty("name").GetString()!));

    private static (Tensor A, Tensor B, double Psnr, double Ssim) Pair(string name)
    {
        var set = MetricFixtureData.Expected.GetProperty("psnr_ssim");
        int h = set.GetProperty("height").GetInt32(), w = set.GetProperty("width").GetInt32();
        var p = set.GetProperty("pairs").EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        return (MetricFixtureData.StoredImage(p.GetProperty("a").GetString()!, h, w),
            MetricFixtureData.StoredImage(p.GetProperty("b").GetString()!, h, w),
            p.GetProperty("psnr").GetDouble(), p.GetProperty("ssim").GetDouble());
    }

    [Theory]
    [MemberData(nameof(PairNames))]
    public void PsnrAndSsimEqualScikitImage(string name)
    {
        var (a, b, psnr, ssim) = Pair(name);
        using (a) using (b)
        {
            using var pa = MetricImages.ToPixels255(a);
            using var pb = MetricImages.ToPixels255(b);
            using var gotPsnr = Psnr.PerImage(pa, pb);
            using var gotSsim = Ssim.PerImage(pa, pb);
            Assert.Equal(psnr, gotPsnr.item<double>(), 1e-4);
            Assert.Equal(ssim, gotSsim.item<double>(), 1e-4);
        }
    }

    [Fact]
    public void BatchedMetricsEqualPerPairOnes()
    {
        var names = MetricFixtureData.Expected.GetProperty("psnr_ssim").GetProperty("pairs").EnumerateArray()
            .Select(p => p.GetProperty("name").GetString()!).ToList();
        var pairs = names.Select(Pair).ToList();
        using var a = cat(pairs.Select(p => p.A).ToArray(), 0);
        using var b = cat(pairs.Select(p => p.B).ToArray(), 0);
        using var pa = MetricImages.ToPixels255(a);
        using var pb = MetricImages.ToPixels255(b);
        using var psnr = Psnr.PerImage(pa, pb);
        using var ssim = Ssim.PerImage(pa, pb);
        for (int i = 0; i < pairs.Count; i++)
        {
            Assert.Equal(pairs[i].Psnr, psnr[i].item<double>(), 1e-4);
            Assert.Equal(pairs[i].Ssim, ssim[i].item<double>(), 1e-4);
        }
        foreach (var p in pairs) { p.A.Dispose(); p.B.Dispose(); }
    }

    [Fact]
    public void FloatReconstructionIsQuantisedLikeAnEightBitImage()
    {
        var (a, b, psnr, ssim) = Pair("noise8");
        using (a) using (b)
        {
            // The same pixels as [-1, 1] floats, off by less than half a grey level, plus overshoot
            // beyond [-1, 1] where the pixel is 0 or 255: quantising must give back the uint8 image.
            using var signed = b.to(float32).div(127.5).sub(1.0);
            using var jitter = rand_like(signed).sub(0.5).mul(0.9 / 127.5);
            using var overshoot = where(b.to(float32) == 255, 0.2f, where(b.to(float32) == 0, -0.2f, 0f));
            using var rec = signed + jitter + overshoot;
            using var pa = MetricImages.ToPixels255(a);
            using var pb = MetricImages.ToPixels255(rec);
            using var exact = MetricImages.ToPixels255(b);
            Assert.True(pb.equal(exact).all().item<bool>());
            using var gotPsnr = Psnr.PerImage(pa, pb);
            Assert.Equal(psnr, gotPsnr.item<double>(), 1e-4);
        }
    }

    [Fact]
    public void IdenticalImagesGiveInfinitePsnrAndUnitSsim()
    {
        var (a, _, _, _) = Pair("noise8");
        using (a)
        {
            using var p = MetricImages.ToPixels255(a);
            using var psnr = Psnr.PerImage(p, p);
            using var ssim = Ssim.PerImage(p, p);
            Assert.True(double.IsPositiveInfinity(psnr.item<double>()));
            Assert.Equal(1.0, ssim.item<double>(), 1e-12);
        }
    }

    public static TheoryData<int, int, string, double> MsSsimCases()
    {
        var data = new TheoryData<int, int, string, double>();
        foreach (var c in MetricFixtureData.Expected.GetProperty("ms_ssim").EnumerateArray())
            data.Add(c.GetProperty("h").GetInt32(), c.GetProperty("w").GetInt32(), c.GetProperty("distortion").GetString()!, c.GetProperty("ms_ssim").GetDouble());
        return data;
    }

    [Theory]
    [MemberData(nameof(MsSsimCases))]
    public void MsSsimEqualsAnIndependentNumpyImplementation(int h, int w, string distortion, double expected)
    {
        var img = MetricFixtureData.FormulaImage(h, w);
        using var a = MetricFixtureData.ToTensor(img);
        using var b = MetricFixtureData.ToTensor(MetricFixtureData.Distort(img, distortion));
        using var got = MsSsim.PerImage(a, b);
        Assert.Equal(expected, got.item<double>(), 1e-6);
    }

    [Fact]
    public void MsSsimFallsAsNoiseGrows()
    {
        var img = MetricFixtureData.FormulaImage(176, 176);
        using var a = MetricFixtureData.ToTensor(img);
        double previous = 1.0 + 1e-12;
        foreach (var how in new[] { "same", "noise10", "noise40" })
        {
            using var b = MetricFixtureData.ToTensor(MetricFixtureData.Distort(img, how));
            using var v = MsSsim.PerImage(a, b);
            Assert.True(v.item<double>() < previous, $"{how}: {v.item<double>()} !< {previous}");
            previous = v.item<double>();
        }
    }

    [Fact]
    public void TooSmallImagesGetAClearError()
    {
        using var a = zeros(1, 3, 64, 64, float64);
        var e = Assert.Throws<ArgumentException>(() => MsSsim.PerImage(a, a));
        Assert.Contains("161", e.Message);
        using var tiny = zeros(1, 3, 8, 8, float64);
        Assert.Throws<ArgumentException>(() => Ssim.PerImage(tiny, tiny));
    }
}
