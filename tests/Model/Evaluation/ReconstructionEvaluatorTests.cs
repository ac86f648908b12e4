using LiteVae.Model.Evaluation;
using LiteVae.Model.Imaging;
using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Evaluation;

/// <summary>The evaluation loop's core: metrics per image equal a direct MetricSet, names follow the images, grids keep the right pairs.</summary>
public class ReconstructionEvaluatorTests
{
    private static readonly Availability<Lpips> NoLpips = Availability<Lpips>.Unavailable("LPIPS: not in this test.");
    private static readonly Availability<FidInceptionV3> NoInception = Availability<FidInceptionV3>.Unavailable("rFID: not in this test.");

    /// <summary>A stand-in model: adds a fixed per-image noise pattern (deterministic, different per image).</summary>
    private sealed class NoisyReconstructor : IReconstructor
    {
        public Device Device => CPU;
        public int Calls { get; private set; }

        public Tensor Reconstruct(Tensor pixels)
        {
            Calls++;
            using var scope = NewDisposeScope();
            var n = pixels.shape[0];
            var noise = randn(pixels.shape, generator: new Generator((ulong)(100 + Calls))) * linspace(2, 40, n).reshape(n, 1, 1, 1);
            var rec = (pixels.to(float32) + noise).clamp(0, 255).round().to(ScalarType.Byte);
            return scope.MoveToOuter(rec);
        }
    }

    private static byte[] RandomImages(int n, int h, int w, int seed)
    {
        var bytes = new byte[n * 3 * h * w];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static ImageSource[] Names(int first, int n) =>
        Enumerable.Range(first, n).Select(i => new ImageSource(i < 4 ? "a.tar" : "b.tar", $"img{i:D2}")).ToArray();

    [Fact]
    public void RowsEqualADirectMetricSetAndFollowTheImageNames()
    {
        const int h = 24, w = 32;
        var batch1 = RandomImages(4, h, w, 1);
        var batch2 = RandomImages(3, h, w, 2);
        var fake = new NoisyReconstructor();
        using var metrics = new MetricSet(NoLpips, NoInception);
        var evaluator = new ReconstructionEvaluator(fake, metrics, gridImages: 3, worstImages: 2);
        evaluator.Add(batch1, 4, h, w, Names(0, 4));
        evaluator.Add(batch2, 3, h, w, Names(4, 3));
        Assert.Equal(7, evaluator.Count);

        // Independently: the same reconstructions (same generator seeds) scored by a fresh MetricSet.
        var replay = new NoisyReconstructor();
        using var direct = new MetricSet(NoLpips, NoInception);
        using (var o1 = tensor(batch1, [4, 3, h, w]))
        using (var r1 = replay.Reconstruct(o1)) direct.Add(o1, r1);
        using (var o2 = tensor(batch2, [3, 3, h, w]))
        using (var r2 = replay.Reconstruct(o2)) direct.Add(o2, r2);

        var images = evaluator.Images();
        for (int i = 0; i < 7; i++)
        {
            Assert.Equal($"img{i:D2}", images[i].Source.Key);
            Assert.Equal(direct.Rows[i].Psnr, images[i].Metrics.Psnr, 12);
            Assert.Equal(direct.Rows[i].Ssim, images[i].Metrics.Ssim, 12);
        }
        // The noise grows within each batch, so the last image of a batch is the worst of it.
        var worstFirst = evaluator.ImagesWorstFirst();
        Assert.Equal(images.OrderBy(x => x.Metrics.Psnr).Select(x => x.Source.Key), worstFirst.Select(x => x.Source.Key));
        Assert.Equal(direct.Summarize()[MetricSet.PsnrName].Value!.Value, evaluator.Metrics.Summarize()[MetricSet.PsnrName].Value!.Value, 12);
    }

    [Fact]
    public void GridsKeepTheFirstAndTheWorstPairsWithTheirPixels()
    {
        const int h = 16, w = 16;
        var batch1 = RandomImages(4, h, w, 3);
        var batch2 = RandomImages(4, h, w, 4);
        var fake = new NoisyReconstructor();
        using var metrics = new MetricSet(NoLpips, NoInception);
        var evaluator = new ReconstructionEvaluator(fake, metrics, gridImages: 3, worstImages: 2);
        evaluator.Add(batch1, 4, h, w, Names(0, 4));
        evaluator.Add(batch2, 4, h, w, Names(4, 4));

        Assert.Equal([0L, 1, 2], evaluator.First.Pairs.Select(p => p.Index));
        int size = 3 * h * w;
        Assert.Equal(batch1.AsSpan(size, size).ToArray(), evaluator.First.Pairs[1].Original);

        var expectedWorst = evaluator.Images().OrderBy(x => x.Metrics.Psnr).Take(2).Select(x => x.Metrics.Index).ToList();
        Assert.Equal(expectedWorst, evaluator.Worst.Pairs.Select(p => p.Index));
        // The kept reconstruction is the one that was scored: its PSNR against the kept original matches the row.
        var pair = evaluator.Worst.Pairs[0];
        using var o = tensor(pair.Original, [1, 3, h, w]).to(float64);
        using var r = tensor(pair.Reconstruction, [1, 3, h, w]).to(float64);
        using var psnr = Psnr.PerImage(o, r);
        Assert.Equal(evaluator.Images()[(int)pair.Index].Metrics.Psnr, psnr.item<double>(), 12);
    }

    [Fact]
    public void ABatchOfAnotherSizeIsRefused()
    {
        using var metrics = new MetricSet(NoLpips, NoInception);
        var evaluator = new ReconstructionEvaluator(new NoisyReconstructor(), metrics);
        evaluator.Add(RandomImages(1, 16, 16, 1), 1, 16, 16, Names(0, 1));
        var e = Assert.Throws<ArgumentException>(() => evaluator.Add(RandomImages(1, 16, 24, 1), 1, 16, 24, Names(1, 1)));
        Assert.Contains("16 x 24", e.Message);
        Assert.Throws<ArgumentException>(() => evaluator.Add(RandomImages(2, 16, 16, 1), 2, 16, 16, Names(1, 1)));
    }

    [Fact]
    public void AutoencoderReconstructionIsThePosteriorModeDecodedAndRounded()
    {
        manual_seed(5);
        using var model = new LiteAutoencoder(TinyModels.Config());
        model.eval();
        var reconstructor = new AutoencoderReconstructor(model, CPU);
        var bytes = RandomImages(2, 32, 32, 9);
        using var pixels = tensor(bytes, [2, 3, 32, 32]);
        using var rec = reconstructor.Reconstruct(pixels);

        // The model contract (PixelConversion) on the same input: x/127.5 − 1, mean, decode, clamp, round.
        using var _ = no_grad();
        using var nhwc = pixels.permute(0, 2, 3, 1).contiguous();
        using var x = PixelConversion.ToModelInput(nhwc);
        using var posterior = model.Encode(x);
        using var decoded = model.Decode(posterior.Mean);
        using var expected = PixelConversion.ToPixels(decoded).permute(0, 3, 1, 2);
        Assert.Equal(ScalarType.Byte, rec.dtype);
        Assert.True(rec.eq(expected).all().item<bool>(), "reconstruction differs from decode(mean) rounded to 8 bits");
        // And it is not the sampled posterior: decoding a sample gives other pixels.
        using var sampled = PixelConversion.ToPixels(model.Decode(posterior.Sample(new Generator(1)))).permute(0, 3, 1, 2);
        Assert.False(rec.eq(sampled).all().item<bool>());
    }

    [Fact]
    public void EvaluatingLeaksNoTensors()
    {
        manual_seed(6);
        using var model = new LiteAutoencoder(TinyModels.Config());
        model.eval();
        using var metrics = new MetricSet(NoLpips, NoInception);
        var evaluator = new ReconstructionEvaluator(new AutoencoderReconstructor(model, CPU), metrics, gridImages: 2, worstImages: 2);
        var bytes = RandomImages(2, 32, 32, 10);
        evaluator.Add(bytes, 2, 32, 32, Names(0, 2));
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 1; i <= 3; i++)
            evaluator.Add(bytes, 2, 32, 32, Names(2 * i, 2));
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(8, evaluator.Count);
    }
}
