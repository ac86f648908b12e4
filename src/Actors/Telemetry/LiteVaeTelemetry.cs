using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace LiteVae.Actors.Telemetry;

/// <summary>
/// The ActivitySources and the Meter of LiteVae, and every instrument, created once.
/// <para>
/// Spans are for what a user waits on (a run, a window of steps, a shard, a transfer, a checkpoint, an
/// eval job, a CLI command); per-step numbers are metrics. Nothing here costs more than a null check
/// while no OpenTelemetry provider listens (the Host starts one only when an OTLP endpoint is set).
/// </para>
/// <para>
/// <see cref="Default"/> is the process's instance (the Host registers it as the DI singleton); tests
/// build their own and listen to it by reference, so parallel tests never see each other's numbers.
/// </para>
/// </summary>
public sealed class LiteVaeTelemetry : IDisposable
{
    public const string DataSourceName = "LiteVae.Data";
    public const string TrainSourceName = "LiteVae.Train";
    public const string CheckpointSourceName = "LiteVae.Checkpoint";
    public const string EvalSourceName = "LiteVae.Eval";
    public const string ClusterSourceName = "LiteVae.Cluster";
    public const string MeterName = "LiteVae";

    /// <summary>Every ActivitySource name, for <c>AddSource</c>.</summary>
    public static readonly IReadOnlyList<string> SourceNames =
        [DataSourceName, TrainSourceName, CheckpointSourceName, EvalSourceName, ClusterSourceName];

    // Seconds from 100 µs to 10 min: step times on a GPU are tens of ms, data waits should be ~0,
    // checkpoint writes take seconds, eval jobs minutes.
    private static readonly IReadOnlyList<double> SecondsBuckets =
        [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

    // Declared after the buckets: static fields initialise in order.
    public static LiteVaeTelemetry Default { get; } = new();

    private readonly ConcurrentDictionary<long, QueueSource> _queues = new();
    private readonly ConcurrentDictionary<long, (KeyValuePair<string, object?>[] Tags, Func<long> Count)> _samples = new();
    private long _nextQueue;

    public LiteVaeTelemetry()
    {
        Data = new ActivitySource(DataSourceName);
        Train = new ActivitySource(TrainSourceName);
        Checkpoint = new ActivitySource(CheckpointSourceName);
        Eval = new ActivitySource(EvalSourceName);
        Cluster = new ActivitySource(ClusterSourceName);
        Meter = new Meter(MeterName);
        var seconds = new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets };

        StepDuration = Meter.CreateHistogram("litevae.train.step.duration", "s",
            "Wall time of one training step on the trainer thread (host side; the GPU syncs once per log window).",
            tags: null, advice: seconds);
        DataWait = Meter.CreateHistogram("litevae.data.batch.wait", "s",
            "How long the trainer waited for its next batch before a step: the pipeline-health signal, should stay near 0.",
            tags: null, advice: seconds);
        Images = Meter.CreateCounter<long>("litevae.train.images", "{image}", "Images trained on.");
        Throughput = Meter.CreateGauge<double>("litevae.train.throughput", "{image}/s",
            "Training images per second over the last log window.");
        DataWaitFraction = Meter.CreateGauge<double>("litevae.train.data_wait.ratio", "1",
            "Share of the last log window's wall time spent waiting for data (0..1).");
        Loss = Meter.CreateGauge<double>("litevae.train.loss", "1",
            "Last value of each loss term (tag litevae.loss.term: total, rec, kl, lpips, g, d, grad_norm, d_weight ...).");
        Step = Meter.CreateGauge<long>("litevae.train.step", "{step}", "Training steps completed.");
        BadSamples = Meter.CreateCounter<long>("litevae.data.bad_samples", "{sample}",
            "Samples skipped because they could not be read or decoded.");
        Meter.CreateObservableCounter("litevae.data.samples", ObserveSamples, "{sample}",
            "Samples decoded into batches by each data pipeline (tag litevae.node).");
        TransferBytes = Meter.CreateCounter<long>("litevae.cluster.transfer.bytes", "By",
            "Batch bytes moved between nodes (tag litevae.direction: sent or received).");
        CheckpointDuration = Meter.CreateHistogram("litevae.checkpoint.duration", "s",
            "Checkpoint time by phase: snapshot (on the trainer thread, stalls training) and write (async).",
            tags: null, advice: seconds);
        EvalDuration = Meter.CreateHistogram("litevae.eval.duration", "s", "Wall time of one evaluation job.",
            tags: null, advice: seconds);
        Meter.CreateObservableGauge("litevae.data.queue.depth", ObserveQueueDepths, "{item}",
            "Items waiting in each pipeline stage's queue (tag litevae.stage).");
        Meter.CreateObservableGauge("litevae.data.queue.bytes", ObserveQueueBytes, "By",
            "Bytes held by each pipeline stage (tag litevae.stage).");
        Meter.CreateObservableGauge("litevae.gpu.memory.used", GpuMemory.ObserveUsed, "By",
            "Device memory in use on each GPU, as NVML reports it (all processes; includes the caching allocator's reserve).");
        Meter.CreateObservableGauge("litevae.gpu.memory.total", GpuMemory.ObserveTotal, "By", "Device memory of each GPU (NVML).");
    }

    public ActivitySource Data { get; }
    public ActivitySource Train { get; }
    public ActivitySource Checkpoint { get; }
    public ActivitySource Eval { get; }
    public ActivitySource Cluster { get; }
    public Meter Meter { get; }

    public Histogram<double> StepDuration { get; }
    public Histogram<double> DataWait { get; }
    public Counter<long> Images { get; }
    public Gauge<double> Throughput { get; }
    public Gauge<double> DataWaitFraction { get; }
    public Gauge<double> Loss { get; }
    public Gauge<long> Step { get; }
    public Counter<long> BadSamples { get; }
    public Counter<long> TransferBytes { get; }
    public Histogram<double> CheckpointDuration { get; }
    public Histogram<double> EvalDuration { get; }

    /// <summary>
    /// Reports a queue's depth (and optionally the bytes it holds) through the observable gauges until
    /// the returned handle is disposed. The callbacks run on the metrics exporter's thread, so they must
    /// be thread-safe and cheap (read a counter, never lock the pipeline).
    /// </summary>
    public IDisposable ObserveQueue(string stage, string node, Func<long> depth, Func<long>? bytes = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stage);
        long id = Interlocked.Increment(ref _nextQueue);
        var tags = new KeyValuePair<string, object?>[] { new(TelemetryTags.Stage, stage), new(TelemetryTags.Node, node) };
        _queues[id] = new QueueSource(tags, depth, bytes);
        return new Unregister(() => _queues.TryRemove(id, out _));
    }

    /// <summary>Reports a pipeline's count of good samples (monotonic) until the handle is disposed.</summary>
    public IDisposable ObserveSamples(string node, Func<long> goodSamples)
    {
        long id = Interlocked.Increment(ref _nextQueue);
        _samples[id] = (new KeyValuePair<string, object?>[] { new(TelemetryTags.Node, node) }, goodSamples);
        return new Unregister(() => _samples.TryRemove(id, out _));
    }

    /// <summary>Per-step numbers of the trainer (metrics only: a step is never a span).</summary>
    public void RecordStep(double stepSeconds, double dataWaitSeconds, int images)
    {
        StepDuration.Record(stepSeconds);
        DataWait.Record(dataWaitSeconds);
        Images.Add(images);
    }

    /// <summary>The numbers of one log window: throughput, data-wait share, last loss values.</summary>
    public void RecordWindow(long step, double imagesPerSecond, double dataWaitFraction,
        IEnumerable<KeyValuePair<string, double>> losses)
    {
        Step.Record(step);
        Throughput.Record(imagesPerSecond);
        DataWaitFraction.Record(dataWaitFraction);
        foreach (var (term, value) in losses)
            Loss.Record(value, new KeyValuePair<string, object?>(TelemetryTags.LossTerm, term));
    }

    public void Dispose()
    {
        Meter.Dispose();
        Data.Dispose();
        Train.Dispose();
        Checkpoint.Dispose();
        Eval.Dispose();
        Cluster.Dispose();
    }

    private IEnumerable<Measurement<long>> ObserveQueueDepths()
    {
        foreach (var q in _queues.Values)
            yield return new Measurement<long>(q.Depth(), q.Tags);
    }

    private IEnumerable<Measurement<long>> ObserveSamples()
    {
        foreach (var (tags, count) in _samples.Values)
            yield return new Measurement<long>(count(), tags);
    }

    private IEnumerable<Measurement<long>> ObserveQueueBytes()
    {
        foreach (var q in _queues.Values)
            if (q.Bytes is not null)
                yield return new Measurement<long>(q.Bytes(), q.Tags);
    }

    private sealed record QueueSource(KeyValuePair<string, object?>[] Tags, Func<long> Depth, Func<long>? Bytes);

    private sealed class Unregister(Action action) : IDisposable
    {
        private Action? _action = action;

        public void Dispose() => Interlocked.Exchange(ref _action, null)?.Invoke();
    }
}
