using System.Diagnostics;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Actors.Tests.Telemetry;

public sealed class TrainingTracerTests : IDisposable
{
    private readonly LiteVaeTelemetry _telemetry = new();
    private readonly ActivityListener _listener;
    private readonly List<Activity> _stopped = [];

    public TrainingTracerTests()
    {
        var mine = new HashSet<ActivitySource> { _telemetry.Train, _telemetry.Checkpoint, _telemetry.Cluster };
        _listener = new ActivityListener
        {
            ShouldListenTo = s => mine.Contains(s),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (_stopped) _stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose()
    {
        _listener.Dispose();
        _telemetry.Dispose();
    }

    [Fact]
    public void AWindowIsOneRootSpanLinkedToTheRunWithItsRealTimesAndStepRange()
    {
        string runTp;
        ActivitySpanId runSpan;
        using (var run = _telemetry.Cluster.StartActivity("run")!)
        {
            runTp = TraceContext.Inject(run)!;
            runSpan = run.SpanId;
        }
        var tracer = new TrainingTracer(_telemetry, "run-1", "127.0.0.1:5001", "cuda:0", runTp);
        var start = new DateTime(2026, 11, 25, 10, 0, 0, DateTimeKind.Utc);
        using var ambient = _telemetry.Cluster.StartActivity("ambient")!;
        tracer.Window(101, 200, start, wallSeconds: 12.5, images: 1600, dataWaitSeconds: 0.25,
            [new("total", 0.5), new("kl", 3.0)]);
        Assert.Same(ambient, Activity.Current);

        var w = Assert.Single(_stopped, a => a.Source == _telemetry.Train);
        Assert.Equal("train steps 101-200", w.DisplayName);
        // Its own trace (complete when exported: no missing root while a run is tailed), linked to the run's marker.
        Assert.Null(w.ParentId);
        Assert.Equal(default, w.ParentSpanId);
        Assert.NotEqual(runTp.Split('-')[1], w.TraceId.ToHexString());
        var link = Assert.Single(w.Links);
        Assert.Equal(runSpan, link.Context.SpanId);
        Assert.Equal(runTp.Split('-')[1], link.Context.TraceId.ToHexString());
        Assert.Equal(start, w.StartTimeUtc);
        Assert.Equal(TimeSpan.FromSeconds(12.5), w.Duration);
        Assert.Equal(101L, w.GetTagItem(TelemetryTags.StepFirst));
        Assert.Equal(200L, w.GetTagItem(TelemetryTags.StepLast));
        Assert.Equal(1600, w.GetTagItem(TelemetryTags.Samples));
        Assert.Equal(128.0, (double)w.GetTagItem("litevae.images_per_second")!, 9);
        Assert.Equal("run-1", w.GetTagItem(TelemetryTags.RunId));
        Assert.Equal("cuda:0", w.GetTagItem(TelemetryTags.Device));
        Assert.Equal(3.0, w.GetTagItem("litevae.loss.kl"));
        Assert.Equal(ActivityStatusCode.Unset, w.Status);
    }

    [Fact]
    public void ANonFiniteLossMarksTheWindowFailed()
    {
        var tracer = new TrainingTracer(_telemetry, "run-2", "n", "cpu", runTraceParent: null);
        tracer.Window(1, 10, DateTime.UtcNow, 1, 10, 0, [new("total", double.NaN)]);
        var w = Assert.Single(_stopped, a => a.Source == _telemetry.Train);
        Assert.Equal(default, w.ParentSpanId);   // untraced run: the window is a root, linked to nothing
        Assert.Empty(w.Links);
        Assert.Equal(ActivityStatusCode.Error, w.Status);
        Assert.Contains("total is NaN at step 10", w.StatusDescription);
    }

    [Fact]
    public void ASnapshotIsTheRootOfItsCheckpointsTraceLinkedToTheRun()
    {
        string runTp;
        ActivitySpanId runSpan;
        using (var run = _telemetry.Cluster.StartActivity("run")!)
            (runTp, runSpan) = (TraceContext.Inject(run)!, run.SpanId);
        var tracer = new TrainingTracer(_telemetry, "run-3", "n", "cpu", runTp);
        using (tracer.StartSnapshot(500, "interval")) { }
        var s = Assert.Single(_stopped, a => a.Source == _telemetry.Checkpoint);
        Assert.Equal(default, s.ParentSpanId);
        Assert.Equal(runSpan, Assert.Single(s.Links).Context.SpanId);
        Assert.Equal("run-3", s.GetTagItem(TelemetryTags.RunId));
        Assert.Equal(500L, s.GetTagItem(TelemetryTags.Step));
    }

    [Fact]
    public void ASnapshotACommandAskedForIsAChildOfTheCommandsSpan()
    {
        string runTp, commandTp;
        using (var run = _telemetry.Cluster.StartActivity("run")!)
            runTp = TraceContext.Inject(run)!;
        ActivitySpanId commandSpan;
        using (var command = _telemetry.Cluster.StartActivity("coordinator checkpoint")!)
            (commandTp, commandSpan) = (TraceContext.Inject(command)!, command.SpanId);
        var tracer = new TrainingTracer(_telemetry, "run-4", "n", "cpu", runTp);
        using (tracer.StartSnapshot(7, "requested", commandTp)) { }
        var s = Assert.Single(_stopped, a => a.Source == _telemetry.Checkpoint);
        Assert.Equal(commandSpan, s.ParentSpanId);
        Assert.Equal(commandTp.Split('-')[1], s.TraceId.ToHexString());
        Assert.Equal(runTp.Split('-')[2], Assert.Single(s.Links).Context.SpanId.ToHexString());
    }
}
