using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using LiteVae.Data;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Metrics;

namespace LiteVae.Host.Evaluation;

/// <summary>What to evaluate on, and how much of the report to keep.</summary>
internal sealed record EvalJobOptions
{
    /// <summary>The evaluation data (source, resolution, batch size, decode workers); read once, in order, with the eval transform.</summary>
    public required DataConfig Data { get; init; }

    /// <summary>Evaluate at most this many images (null: all).</summary>
    public long? Limit { get; init; }

    /// <summary>Columns of the reconstruction grid (the first images).</summary>
    public int GridImages { get; init; } = 8;

    /// <summary>Columns of the worst-images grid.</summary>
    public int WorstImages { get; init; } = 8;
}

/// <summary>Where the time went.</summary>
internal sealed record EvalTiming(double Seconds, double ImagesPerSecond, double ComputeSeconds, double DataWaitSeconds, double FidSeconds);

/// <summary>What came out of the data: how many images, how many bad samples were skipped and why.</summary>
internal sealed record EvalDataOutcome(IReadOnlyList<string> Source, int Resolution, long Images, long? Limit, long BadSamples,
    IReadOnlyDictionary<string, long> BadReasons, long UnreadableShards);

/// <summary>A finished evaluation: the aggregates, every image (worst first), the grids' images and the timing.</summary>
internal sealed record EvalResults(MetricSummary Summary, IReadOnlyList<EvaluatedImage> WorstFirst, CapturedImages First,
    CapturedImages Worst, int Height, int Width, EvalTiming Timing, EvalDataOutcome Data);

/// <summary>
/// One evaluation job: the data pipeline in evaluation order (every shard once, in list order; resize short
/// side + centre crop) feeding a <see cref="ReconstructionEvaluator"/>. It advances one batch per <see cref="Step"/>,
/// so a CLI loop and the Evaluator actor (one batch per message) drive the same code; <see cref="Run"/> is the
/// plain loop with progress and cancellation. Memory is bounded by the pipeline's prefetch plus one row per
/// image. Not thread-safe: one thread drives it (TorchSharp's dispose scopes are per thread).
/// </summary>
internal sealed class EvalJob : IDisposable
{
    private readonly EvalJobOptions _options;
    private readonly EvalImageStream _images;
    private readonly MetricSet _metrics;
    private readonly ReconstructionEvaluator _evaluator;
    private readonly long _total;
    private readonly Stopwatch _wall = new();
    private readonly Stopwatch _dataWait = new();
    private bool _done;

    private EvalJob(EvalJobOptions options, EvalImageStream images, MetricSet metrics, ReconstructionEvaluator evaluator)
    {
        (_options, _images, _metrics, _evaluator) = (options, images, metrics, evaluator);
        _total = options.Limit is long l ? Math.Min(l, images.Index.TotalSamples) : images.Index.TotalSamples;
    }

    /// <summary>Starts reading the data. The networks stay the caller's (a training run reuses them).</summary>
    public static EvalJob Start(IReconstructor reconstructor, MetricNetworks networks, EvalJobOptions options)
    {
        if (options.Limit is < 1) throw new ArgumentException($"--limit {options.Limit}: must be at least 1.");
        var images = EvalImageStream.Start(options.Data);
        MetricSet? metrics = null;
        try
        {
            metrics = networks.NewMetricSet();
            var evaluator = new ReconstructionEvaluator(reconstructor, metrics, options.GridImages, options.WorstImages);
            return new EvalJob(options, images, metrics, evaluator);
        }
        catch
        {
            metrics?.Dispose();
            images.Dispose();
            throw;
        }
    }

    public long Count => _evaluator.Count;

    public EvalProgress Progress => new(_evaluator.Count, _total, _wall.Elapsed);

    /// <summary>Evaluates the next batch. False once the data (or --limit) is exhausted; the batch read in that call, if any, was evaluated.</summary>
    public bool Step(CancellationToken ct = default)
    {
        if (_done) return false;
        ct.ThrowIfCancellationRequested();
        _wall.Start();
        _dataWait.Start();
        Batch? batch;
        try
        {
            batch = _images.Next(ct);
        }
        finally
        {
            _dataWait.Stop();
        }
        if (batch is null)
        {
            _done = true;
            return false;
        }
        using (batch)
        {
            int take = batch.Count;
            if (_options.Limit is long limit)
                take = (int)Math.Min(take, limit - _evaluator.Count);
            var sources = new ImageSource[take];
            for (int i = 0; i < take; i++)
                sources[i] = new ImageSource(_images.Index.Shards[batch.Samples[i].Shard].Name, batch.Samples[i].Key);
            if (take > 0) _evaluator.Add(batch.Pixels.Span, take, batch.Height, batch.Width, sources);
        }
        if (_options.Limit is long l && _evaluator.Count >= l) _done = true;
        return !_done;
    }

    /// <summary>Steps to the end, reporting progress after each batch. Throws OperationCanceledException when cancelled.</summary>
    public void Run(CancellationToken ct = default, Action<EvalProgress>? progress = null)
    {
        while (Step(ct))
            progress?.Invoke(Progress);
        progress?.Invoke(Progress);
    }

    /// <summary>The aggregates (rFID unless <paramref name="computeFid"/> is false), every image worst first, and the timing.</summary>
    public EvalResults Finish(bool computeFid = true)
    {
        if (_evaluator.Count == 0)
            throw new InvalidDataException(NoImages());
        _wall.Start();
        var fidClock = Stopwatch.StartNew();
        var summary = _metrics.Summarize(computeFid);
        fidClock.Stop();
        _wall.Stop();
        double seconds = _wall.Elapsed.TotalSeconds;
        var stats = _images.Pipeline.Stats;
        var data = new EvalDataOutcome(_options.Data.Source, _options.Data.Resolution, _evaluator.Count, _options.Limit,
            stats.Bad, stats.ByReason, _images.Index.Problems.Count(p => p.Reason == BadReason.UnreadableShard && p.Key is null));
        var timing = new EvalTiming(seconds, seconds > 0 ? _evaluator.Count / seconds : 0, _evaluator.ComputeTime.TotalSeconds,
            _dataWait.Elapsed.TotalSeconds, fidClock.Elapsed.TotalSeconds);
        return new EvalResults(summary, _evaluator.ImagesWorstFirst(), _evaluator.First, _evaluator.Worst,
            _evaluator.Height, _evaluator.Width, timing, data);
    }

    private string NoImages()
    {
        var stats = _images.Pipeline.Stats;
        var problems = _images.Index.Problems.Concat(stats.RecentProblems).ToList();
        return $"{string.Join(", ", _options.Data.Source)}: no images could be read" +
               (problems.Count > 0 ? $" ({stats}; e.g. {problems[0]})" : " (the shards hold no image samples)") +
               ". Check the path; 'litevae shards check <shards>' lists what is wrong with a shard.";
    }

    public void Dispose()
    {
        _images.Dispose();
        _metrics.Dispose();
    }
}
