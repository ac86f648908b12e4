using System.Diagnostics;

namespace LiteVae.Actors.Telemetry;

/// <summary>
/// The trainer's telemetry: per-step numbers go to metrics, each log window becomes one span. A window span is
/// written when the window closes, with the window's real start time, so nothing stays open on the trainer's
/// pinned thread between messages (an open span there would become the ambient parent of unrelated work).
/// <para>
/// Every window and checkpoint is its own trace (complete as soon as it is exported, so a run tailed in
/// Jaeger never shows a missing root), tagged with the run id and linked to the run's marker span (the
/// <c>train run start</c>/<c>resume</c> span whose context came with StartTraining). A checkpoint a user
/// asked for is instead a child of the coordinator's span for that command: one trace from the CLI.
/// </para>
/// </summary>
public sealed class TrainingTracer
{
    private readonly LiteVaeTelemetry _telemetry;
    private readonly string? _run;   // the run marker's traceparent: every root span here links to it
    private readonly KeyValuePair<string, object?>[] _identity;

    public TrainingTracer(LiteVaeTelemetry telemetry, string runId, string node, string device, string? runTraceParent)
    {
        _telemetry = telemetry;
        _run = TraceContext.TryExtract(runTraceParent, out _) ? runTraceParent : null;
        RunId = runId;
        _identity = [new(TelemetryTags.RunId, runId), new(TelemetryTags.Node, node), new(TelemetryTags.Device, device)];
    }

    public string RunId { get; }

    /// <summary>One step's numbers (metrics only).</summary>
    public void Step(double stepSeconds, double dataWaitSeconds, int images) =>
        _telemetry.RecordStep(stepSeconds, dataWaitSeconds, images);

    /// <summary>
    /// Closes a log window of steps <paramref name="firstStep"/>..<paramref name="lastStep"/> that began at
    /// <paramref name="startUtc"/> and lasted <paramref name="wallSeconds"/>: one span plus the window gauges.
    /// </summary>
    public void Window(long firstStep, long lastStep, DateTime startUtc, double wallSeconds, int images, double dataWaitSeconds,
        IReadOnlyCollection<KeyValuePair<string, double>> losses)
    {
        double imagesPerSecond = wallSeconds > 0 ? images / wallSeconds : 0;
        double waitFraction = wallSeconds > 0 ? Math.Clamp(dataWaitSeconds / wallSeconds, 0, 1) : 0;
        _telemetry.RecordWindow(lastStep, imagesPerSecond, waitFraction, losses);
        if (!_telemetry.Train.HasListeners()) return;

        var tags = new List<KeyValuePair<string, object?>>(_identity)
        {
            new(TelemetryTags.StepFirst, firstStep),
            new(TelemetryTags.StepLast, lastStep),
            new(TelemetryTags.Samples, images),
            new("litevae.data_wait.seconds", dataWaitSeconds),
            new("litevae.images_per_second", imagesPerSecond),
        };
        foreach (var (term, value) in losses)
            tags.Add(new($"litevae.loss.{term}", value));
        var ambient = Activity.Current;
        var span = Start(_telemetry.Train, $"train steps {firstStep}-{lastStep}", ActivityKind.Internal, tags, startUtc, parent: null);
        if (span is null) return;
        foreach (var (term, value) in losses)
            if (!double.IsFinite(value))
                span.Fail($"loss term {term} is {value} at step {lastStep}");
        span.SetEndTime(startUtc + TimeSpan.FromSeconds(Math.Max(0, wallSeconds)));
        span.Stop();
        Activity.Current = ambient;   // the window span was never the caller's business
    }

    /// <summary>The snapshot of weights to CPU for a checkpoint (the part that stalls training), the root of the
    /// checkpoint's trace (its write is a child), or a child of <paramref name="commandTraceParent"/> when a command
    /// asked for it. Like every detached span, it leaves Activity.Current null on this thread when it stops.</summary>
    public Activity? StartSnapshot(long step, string reason, string? commandTraceParent = null) =>
        Start(_telemetry.Checkpoint, "checkpoint snapshot", ActivityKind.Internal,
            [.. _identity, new(TelemetryTags.Step, step), new(TelemetryTags.Reason, reason)], startUtc: null, commandTraceParent);

    /// <summary>
    /// A root span linked to the run's marker (a child of <paramref name="parent"/> when that is a valid
    /// traceparent), detached from any ambient span. Never a child of a span that is still open: the marker
    /// ended when the run (re)started, a command's span ends as soon as the coordinator has passed it on.
    /// </summary>
    private Activity? Start(ActivitySource source, string name, ActivityKind kind, IEnumerable<KeyValuePair<string, object?>> tags,
        DateTime? startUtc, string? parent)
    {
        if (!source.HasListeners()) return null;
        TraceContext.TryExtract(parent, out var parentContext);
        ActivityLink[]? links = TraceContext.TryExtract(_run, out var run) ? [new ActivityLink(run)] : null;
        var ambient = Activity.Current;
        Activity.Current = null;
        var span = source.StartActivity(kind, parentContext, tags, links, startTime: startUtc is { } s ? new DateTimeOffset(s, TimeSpan.Zero) : default, name);
        if (span is null) Activity.Current = ambient;
        return span;
    }
}
