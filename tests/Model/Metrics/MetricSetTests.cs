using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Tests.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Metrics;

/// <summary>The accumulator: rows, means, unavailable metrics with reasons, and merging workers.</summary>
public class MetricSetTests
{
    private static readonly Availability<Lpips> NoLpips = Availability<Lpips>.Unavailable("LPIPS (VGG): vgg16-397923af.pth not found in /nowhere.");
    private static readonly Availability<FidInceptionV3> NoInception = Availability<FidInceptionV3>.Unavailable("rFID (Inception-v3): pt_inception-2015-12-05-6726825d.pth not found in /nowhere.");

    private static Tensor Images(int n, int seed, int size = 32)
    {
        var g = new Generator((ulong)seed);
        return randint(0, 256, [n, 3, size, size], ScalarType.Byte, generator: g);
    }

    private static Tensor Noisy(Tensor images, double sigma, int seed)
    {
        using var noise = randn(images.shape, generator: new Generator((ulong)seed)).mul(sigma);
        using var f = images.to(float32) + noise;
        return f.clamp(0, 255).round().to(ScalarType.Byte);
    }

    [Fact]
    public void WithoutWeightsPsnrAndSsimStillWorkAndTheRestSayWhy()
    {
        using var orig = Images(5, 1);
        using var rec = Noisy(orig, 10, 2);
        using var set = new MetricSet(NoLpips, NoInception);
        var rows = set.Add(orig, rec);
        Assert.Equal(5, rows.Count);

        using var pa = orig.to(float64);
        using var pb = rec.to(float64);
        using var psnr = Psnr.PerImage(pa, pb);
        using var ssim = Ssim.PerImage(pa, pb);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(psnr[i].item<double>(), rows[i].Psnr, 1e-12);
            Assert.Equal(ssim[i].item<double>(), rows[i].Ssim, 1e-12);
            Assert.Null(rows[i].Lpips);
            Assert.Null(rows[i].MsSsim);
        }
        var summary = set.Summarize();
        Assert.Equal(psnr.mean().item<double>(), summary[MetricSet.PsnrName].Value!.Value, 1e-12);
        Assert.Contains("vgg16-397923af.pth", summary[MetricSet.LpipsName].Unavailable);
        Assert.Contains("pt_inception", summary[MetricSet.FidName].Unavailable);
        Assert.Contains("161", summary[MetricSet.MsSsimName].Unavailable);
        Assert.Null(summary[MetricSet.LpipsName].Value);
    }

    [Fact]
    public void FloatReconstructionsInMinusOneToOneAreAccepted()
    {
        using var orig = Images(3, 3);
        using var signed = orig.to(float32).div(127.5).sub(1.0);
        using var set = new MetricSet(NoLpips, NoInception);
        var rows = set.Add(orig, signed);
        Assert.All(rows, r => Assert.True(double.IsPositiveInfinity(r.Psnr)));
        Assert.All(rows, r => Assert.Equal(1.0, r.Ssim, 1e-12));
    }

    [Fact]
    public void MismatchedBatchesGetAClearError()
    {
        using var a = Images(2, 1);
        using var b = Images(3, 1);
        using var set = new MetricSet(NoLpips, NoInception);
        var e = Assert.Throws<ArgumentException>(() => set.Add(a, b));
        Assert.Contains("same shape", e.Message);
    }

    private static (Availability<Lpips>, Availability<FidInceptionV3>) FormulaNetworks()
    {
        // Formula weights: the numbers are not meaningful LPIPS or FID, but the plumbing is.
        var lpips = new Lpips(LpipsNet.Alex);
        FormulaWeights.Fill(lpips, stripPrefix: "net.");
        var inception = new FidInceptionV3();
        FormulaWeights.Fill(inception);
        return (Availability<Lpips>.Available(lpips), Availability<FidInceptionV3>.Available(inception));
    }

    [Fact]
    public void MergingWorkersEqualsOnePass()
    {
        var (lp, inc) = FormulaNetworks();
        using var lpips = lp.Value!;
        inc.Value!.Dispose(); // Inception statistics merge by addition: FrechetTests.MergedHalvesEqualTheWhole
        using var orig = Images(4, 4, size: 64);
        using var rec = Noisy(orig, 25, 5);
        using var whole = new MetricSet(lp, NoInception);
        whole.Add(orig, rec);
        using var w1 = new MetricSet(lp, NoInception);
        using var w2 = new MetricSet(lp, NoInception);
        w1.Add(orig[TensorIndex.Slice(0, 3)], rec[TensorIndex.Slice(0, 3)]);
        w2.Add(orig[TensorIndex.Slice(3, 4)], rec[TensorIndex.Slice(3, 4)], firstIndex: 3);
        w1.Merge(w2);

        Assert.Equal(whole.Rows.Select(r => r.Index), w1.Rows.Select(r => r.Index));
        for (int i = 0; i < 4; i++)
        {
            var (x, y) = (whole.Rows[i], w1.Rows[i]);
            Assert.True(x.Lpips > 0);
            Assert.Equal(x.Psnr, y.Psnr, 1e-12);
            Assert.Equal(x.Ssim, y.Ssim, 1e-12);
            Assert.Equal(x.Lpips!.Value, y.Lpips!.Value, 1e-6);
        }
        var (a, b) = (whole.Summarize(), w1.Summarize());
        foreach (var name in new[] { MetricSet.PsnrName, MetricSet.SsimName, MetricSet.LpipsName })
            Assert.Equal(a[name].Value!.Value, b[name].Value!.Value, 1e-6);
        Assert.Equal(whole.Rows.Average(r => r.Lpips!.Value), a[MetricSet.LpipsName].Value!.Value, 1e-12);
        Assert.Equal(whole.Rows.Max(r => r.Lpips), MetricSet.WorstFirst(whole.Rows)[0].Lpips);
    }

    [Fact]
    public void InceptionFeaturesOfBothSidesAreAccumulated()
    {
        var (lp, inc) = FormulaNetworks();
        using var lpips = lp.Value!;
        using var inception = inc.Value!;
        using var orig = Images(1, 8, size: 32);
        using var rec = Noisy(orig, 25, 9);
        using var set = new MetricSet(lp, inc);
        set.Add(orig, rec);
        Assert.Equal(1, set.OriginalFeatures.Count);
        Assert.Equal(1, set.ReconstructionFeatures.Count);
        using var signed = orig.to(float32).div(127.5).sub(1.0);
        using var direct = inception.call(signed).to(float64).sum([0]);
        var want = direct.data<double>().ToArray();
        var got = set.OriginalFeatures.Export().Sum;
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-9 * (1 + Math.Abs(want[i])));
        Assert.Contains("computeFid", set.Summarize(computeFid: false)[MetricSet.FidName].Unavailable);
    }

    [Fact]
    [Trait("Category", "Slow")] // 2048-d float64 eigendecompositions: tens of seconds on a busy 2-core CPU
    public void RfidOfPerfectReconstructionsIsZero()
    {
        var (lp, inc) = FormulaNetworks();
        using var lpips = lp.Value!;
        using var inception = inc.Value!;
        using var orig = Images(3, 6, size: 32);
        using var perfect = new MetricSet(lp, inc);
        perfect.Add(orig, orig);
        var p = perfect.Summarize();
        Assert.Equal(0.0, p[MetricSet.LpipsName].Value!.Value, 1e-9);
        Assert.Equal(0.0, p[MetricSet.FidName].Value!.Value, 1e-6);
    }

    [Fact]
    public void AddLeaksNoTensors()
    {
        using var orig = Images(2, 11, size: 176);
        using var rec = Noisy(orig, 10, 12);
        using var set = new MetricSet(NoLpips, NoInception);
        set.Add(orig, rec);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) set.Add(orig, rec);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.NotNull(set.Rows[^1].MsSsim);
    }

    [Fact]
    public void WorstFirstFallsBackToPsnr()
    {
        var rows = new[] { new ImageMetrics(0, 30, 0.9, null, null), new ImageMetrics(1, 20, 0.8, null, null), new ImageMetrics(2, 25, 0.85, null, null) };
        Assert.Equal(new long[] { 1, 2, 0 }, MetricSet.WorstFirst(rows).Select(r => r.Index));
    }
}
