using System.Diagnostics;
using LiteVae.Model.Metrics;
using static TorchSharp.torch;

namespace LiteVae.Model.Evaluation;

/// <summary>Where an evaluated image came from: its shard (or folder slice) and its sample key.</summary>
public sealed record ImageSource(string Shard, string Key);

/// <summary>One evaluated image: where it came from and its metrics.</summary>
public sealed record EvaluatedImage(ImageSource Source, ImageMetrics Metrics);

/// <summary>
/// The evaluation loop's core, fed plain uint8 batches (N x 3 x H x W planar bytes, as the data
/// pipeline assembles them): reconstruct each batch through an <see cref="IReconstructor"/>, score
/// originals against reconstructions with a <see cref="MetricSet"/>, and keep a few pairs for the
/// report grids (the first images, and the worst by LPIPS, or by PSNR without LPIPS). Memory is
/// constant apart from one small row per image, so 50k images fit. One thread at a time.
/// </summary>
public sealed class ReconstructionEvaluator
{
    private readonly IReconstructor _reconstructor;
    private readonly MetricSet _metrics;
    private readonly List<ImageSource> _sources = [];
    private readonly Stopwatch _compute = new();

    public ReconstructionEvaluator(IReconstructor reconstructor, MetricSet metrics, int gridImages = 8, int worstImages = 8)
    {
        _reconstructor = reconstructor;
        _metrics = metrics;
        First = new CapturedImages(gridImages, keepWorst: false);
        Worst = new CapturedImages(worstImages, keepWorst: true);
    }

    public MetricSet Metrics => _metrics;

    /// <summary>Images evaluated so far.</summary>
    public long Count => _sources.Count;

    /// <summary>Image height and width (0 before the first batch); every batch must have the same.</summary>
    public int Height { get; private set; }

    public int Width { get; private set; }

    /// <summary>Time spent inside <see cref="Add"/> (reconstruction and metrics, including the device sync).</summary>
    public TimeSpan ComputeTime => _compute.Elapsed;

    /// <summary>The first images with their reconstructions, in order.</summary>
    public CapturedImages First { get; }

    /// <summary>The worst images so far, worst first.</summary>
    public CapturedImages Worst { get; }

    /// <summary>How bad an image is (higher = worse): LPIPS when it was computed, else minus PSNR.</summary>
    public static double Badness(ImageMetrics m) => m.Lpips ?? -m.Psnr;

    /// <summary>Evaluates one batch; <paramref name="sources"/> names its images in order.</summary>
    public IReadOnlyList<ImageMetrics> Add(ReadOnlySpan<byte> planar, int count, int height, int width, IReadOnlyList<ImageSource> sources)
    {
        if (count == 0) return [];
        if (count < 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"invalid batch shape {count} x 3 x {height} x {width}.");
        int sampleBytes = checked(3 * height * width);
        if (planar.Length < (long)count * sampleBytes)
            throw new ArgumentException($"the batch holds {planar.Length} bytes, fewer than {count} x 3 x {height} x {width}.");
        if (sources.Count != count)
            throw new ArgumentException($"{sources.Count} image names for a batch of {count}.");
        if (Height == 0)
        {
            Height = height;
            Width = width;
        }
        else if (height != Height || width != Width)
        {
            throw new ArgumentException($"a batch of {height} x {width} images after {Height} x {Width} ones; one evaluation scores one size.");
        }

        _compute.Start();
        try
        {
            using var scope = NewDisposeScope();
            var cpu = empty([count, 3, height, width], ScalarType.Byte);
            planar[..(count * sampleBytes)].CopyTo(cpu.bytes);
            var originals = cpu.to(_reconstructor.Device);
            var reconstructions = _reconstructor.Reconstruct(originals);
            if (!reconstructions.shape.SequenceEqual(originals.shape) || reconstructions.dtype != ScalarType.Byte)
                throw new InvalidOperationException($"the reconstruction is {reconstructions.dtype} [{string.Join(", ", reconstructions.shape)}], " +
                    $"expected uint8 [{string.Join(", ", originals.shape)}].");
            var rows = _metrics.Add(originals, reconstructions, firstIndex: Count);
            Capture(planar, rows, sources, reconstructions, sampleBytes);
            _sources.AddRange(sources);
            return rows;
        }
        finally
        {
            _compute.Stop();
        }
    }

    private void Capture(ReadOnlySpan<byte> planar, IReadOnlyList<ImageMetrics> rows, IReadOnlyList<ImageSource> sources, Tensor reconstructions, int sampleBytes)
    {
        bool any = false;
        foreach (var r in rows)
            any |= First.Wants(Badness(r)) || Worst.Wants(Badness(r));
        if (!any) return;
        using var rec = reconstructions.cpu().contiguous();
        var recBytes = rec.bytes;
        for (int i = 0; i < rows.Count; i++)
        {
            double badness = Badness(rows[i]);
            bool first = First.Wants(badness), worst = Worst.Wants(badness);
            if (!first && !worst) continue;
            var pair = new ImagePair(rows[i].Index, sources[i].Key,
                planar.Slice(i * sampleBytes, sampleBytes).ToArray(), recBytes.Slice(i * sampleBytes, sampleBytes).ToArray(), badness);
            if (first) First.Offer(pair);
            if (worst) Worst.Offer(pair);
        }
    }

    /// <summary>Every image so far with its source, in evaluation order.</summary>
    public IReadOnlyList<EvaluatedImage> Images() =>
        _metrics.Rows.Select(r => new EvaluatedImage(_sources[checked((int)r.Index)], r)).ToList();

    /// <summary>Every image so far, worst first (LPIPS when every image has it, else PSNR), as <see cref="MetricSet.WorstFirst"/>.</summary>
    public IReadOnlyList<EvaluatedImage> ImagesWorstFirst() =>
        MetricSet.WorstFirst(_metrics.Rows).Select(r => new EvaluatedImage(_sources[checked((int)r.Index)], r)).ToList();
}
