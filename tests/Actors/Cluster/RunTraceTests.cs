using System.Diagnostics;
using Akka.Actor;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Hosting;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Tests.Synthetic;
using static LiteVae.Actors.Protocol.ClientProtocol;

namespace LiteVae.Actors.Tests.Cluster;

/// <summary>
/// The shape of a run's traces with the real actors (coordinator, data node, trainer with a synthetic engine) and
/// a trainer that crashes and resumes: the run is a chain of zero-length markers (start, resume, end), never one
/// open span; the trainer's start is a child of its marker, which ended before it began; step windows and
/// checkpoints are roots carrying the run id and a link to the marker of their trainer generation; and no span
/// ends while its parent is still open. Spans are captured from <see cref="LiteVaeTelemetry.Default"/> (the
/// actors use it) and told apart from parallel tests' by this run's id and the links and parents that lead to it.
/// </summary>
public sealed class RunTraceTests : Akka.TestKit.Xunit2.TestKit
{
    private readonly string _runDir = Directory.CreateTempSubdirectory("litevae-trace-").FullName;
    private readonly SyntheticStore _store = new();
    private readonly ActivityListener _listener;
    private readonly List<Activity> _stopped = [];

    public RunTraceTests() : base(TestNodes.NodeConfig([ClusterRoles.Coordinator, ClusterRoles.Trainer]), ClusterRoles.SystemName)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => LiteVaeTelemetry.SourceNames.Contains(s.Name),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (_stopped) _stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public void A_resumed_run_is_a_chain_of_markers_and_every_window_and_checkpoint_is_a_root_linked_to_its_marker()
    {
        var shards = new TestShards(Path.Combine(_runDir, "shards"), [12, 12, 12]);
        var data = shards.Data();
        var engine = new SyntheticEngine.Options { GateAtStep = 15, CrashAtStep = 15 };
        var run = CreateTestProbe();
        Sys.EventStream.Subscribe(run.Ref, typeof(RunFinished));
        Akka.Cluster.Cluster.Get(Sys).Join(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        var proxy = RoleStarter.StartCoordinatorProxy(Sys);
        RoleStarter.StartCoordinator(Sys, TestNodes.Coordinator(TestNodes.Plan(_runDir, shards, data, maxSteps: 30, logEvery: 5), _store));
        RoleStarter.StartDataNode(Sys, TestNodes.Data("local", data), proxy);
        RoleStarter.StartTrainer(Sys, TestNodes.Trainer("local", engine, _store, data), proxy);
        Assert.True(engine.AtGate.Wait(Long));
        AwaitCondition(() => _store.List(_runDir).Any(c => c.Step == 10), Long);
        engine.Release.Set();
        Assert.Equal(30, run.ExpectMsg<RunFinished>(Long).Step);
        AwaitCondition(() => Spans().Any(s => s.OperationName == "train run end" && Mine(s)), Long);

        var spans = Spans();
        var markers = spans.Where(s => s.OperationName.StartsWith("train run ", StringComparison.Ordinal) && Mine(s))
            .OrderBy(s => s.StartTimeUtc).ToList();
        Assert.Equal(["train run start", "train run resume", "train run end"], markers.Select(m => m.OperationName));
        var (start, resume, end) = (markers[0], markers[1], markers[2]);
        Assert.All(markers, m => Assert.Equal(default, m.ParentSpanId));
        Assert.Equal(Id(start.Context), Id(Assert.Single(resume.Links).Context));   // a chain: each marker links to the one before
        Assert.Equal(Id(resume.Context), Id(Assert.Single(end.Links).Context));
        Assert.Equal(Path.Combine(_runDir, "checkpoints", "step-00000010"), resume.GetTagItem(TelemetryTags.Checkpoint));
        Assert.Equal(30L, end.GetTagItem(TelemetryTags.StepLast));
        Assert.Equal("step budget reached", end.GetTagItem(TelemetryTags.Reason));

        // One trainer start per generation, each a child of its marker and begun after the marker ended.
        foreach (var marker in new[] { start, resume })
        {
            var trainerStart = Assert.Single(spans, s => s.OperationName == "trainer start" && s.ParentSpanId == marker.SpanId);
            Assert.Equal(marker.TraceId, trainerStart.TraceId);
            Assert.True(trainerStart.StartTimeUtc >= marker.StartTimeUtc + marker.Duration);
        }

        // Windows and interval checkpoints: roots with the run id, linked to the marker of their generation.
        var windows = spans.Where(s => s.OperationName.StartsWith("train steps ", StringComparison.Ordinal) && Mine(s)).ToList();
        Assert.NotEmpty(windows);
        foreach (var w in windows)
        {
            Assert.Equal(default, w.ParentSpanId);
            var marker = (long)w.GetTagItem(TelemetryTags.StepFirst)! > 10 && w.StartTimeUtc >= resume.StartTimeUtc ? resume : start;
            Assert.Equal(Id(marker.Context), Id(Assert.Single(w.Links).Context));
        }
        Assert.Contains(windows, w => Id(w.Links.Single().Context) == Id(resume.Context));
        var snapshots = spans.Where(s => s.OperationName == "checkpoint snapshot" && Mine(s)).ToList();
        Assert.Contains(snapshots, s => (long)s.GetTagItem(TelemetryTags.Step)! == 10);
        Assert.All(snapshots, s =>
        {
            Assert.Equal(default, s.ParentSpanId);
            Assert.Contains(Id(s.Links.Single().Context), new[] { Id(start.Context), Id(resume.Context) });
        });

        // No span of this run ended while its parent was still open (a backend would show it without its root).
        var ours = spans.Where(s => Mine(s) || s.Links.Any(l => markers.Any(m => Id(m.Context) == Id(l.Context)))).Select(s => s.TraceId).ToHashSet();
        var byId = spans.Where(s => ours.Contains(s.TraceId)).ToDictionary(s => s.SpanId);
        Assert.Contains(byId.Values, s => s.ParentSpanId != default);
        foreach (var s in byId.Values.Where(s => s.ParentSpanId != default))
        {
            Assert.True(byId.TryGetValue(s.ParentSpanId, out var parent), $"'{s.OperationName}' has a parent that was never ended");
            Assert.True(parent.StartTimeUtc + parent.Duration <= s.StartTimeUtc + s.Duration,
                $"'{s.OperationName}' ended before its parent '{parent.OperationName}'");
        }
    }

    /// <summary>A span's identity (a link's context is parsed from a traceparent, so it is marked remote).</summary>
    private static (ActivityTraceId, ActivitySpanId) Id(ActivityContext c) => (c.TraceId, c.SpanId);

    private bool Mine(Activity s) => s.GetTagItem(TelemetryTags.RunId) as string == Path.GetFileName(_runDir);

    private List<Activity> Spans()
    {
        lock (_stopped) return [.. _stopped];
    }

    protected override void Dispose(bool disposing)
    {
        _listener.Dispose();
        base.Dispose(disposing);
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }
}
