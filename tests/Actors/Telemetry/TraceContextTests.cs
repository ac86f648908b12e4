using System.Diagnostics;
using System.Text.RegularExpressions;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Actors.Tests.Telemetry;

public sealed class TraceContextTests : IDisposable
{
    private readonly LiteVaeTelemetry _telemetry = new();
    private readonly ActivityListener _listener;
    private readonly List<Activity> _stopped = [];

    public TraceContextTests()
    {
        // Listen to this instance's sources only (by reference), so parallel tests never mix.
        var mine = new HashSet<ActivitySource> { _telemetry.Cluster, _telemetry.Eval, _telemetry.Train };
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
    public void InjectWritesTheW3cTraceparentOfTheSpan()
    {
        using var span = _telemetry.Cluster.StartActivity("litevae eval")!;
        string? tp = TraceContext.Inject(span);
        Assert.Matches(new Regex("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$"), tp);
        Assert.Equal($"00-{span.TraceId.ToHexString()}-{span.SpanId.ToHexString()}-01", tp);
        Assert.Equal(tp, TraceContext.Current);
        Assert.Null(TraceContext.Inject(null));
    }

    [Fact]
    public void AHeldSpanNeverBecomesTheThreadsCurrentSpanAndEndsWithoutDisturbingIt()
    {
        string parent;
        using (var client = _telemetry.Cluster.StartActivity("client")!)
            parent = TraceContext.Inject(client)!;
        Assert.Null(Activity.Current);

        // An actor holds a job's span across messages: handling other messages meanwhile must not parent to it.
        var held = _telemetry.Eval.StartHeld("eval job", ActivityKind.Consumer, parent)!;
        Assert.Null(Activity.Current);
        using (var other = _telemetry.Train.StartFrom("other message", ActivityKind.Internal, null)!)
            Assert.Null(other.ParentId);
        using var unrelated = _telemetry.Train.StartActivity("ambient")!;
        held.EndHeld();
        Assert.Same(unrelated, Activity.Current);
        Assert.True(held.IsStopped);
        Assert.Equal(parent.Split('-')[1], held.TraceId.ToHexString());
        Assert.Equal(parent.Split('-')[2], held.ParentSpanId.ToHexString());
        held.EndHeld();   // a second end is harmless
        lock (_stopped) Assert.Single(_stopped, a => a.DisplayName == "eval job");
    }

    [Fact]
    public async Task ConsumerSpanOnAnotherThreadContinuesTheSendersTrace()
    {
        string traceParent;
        ActivityTraceId traceId;
        ActivitySpanId senderSpan;
        using (var send = _telemetry.Cluster.StartActivity("client")!)
        {
            traceParent = TraceContext.Inject(send)!;
            traceId = send.TraceId;
            senderSpan = send.SpanId;
        }

        // The receiver runs elsewhere with an unrelated ambient span (what a dispatcher thread may hold).
        var (gotTrace, gotParent, kind, remote, ambientAfter) = await Task.Run(() =>
        {
            using var unrelated = _telemetry.Train.StartActivity("unrelated")!;
            using var consumer = _telemetry.Eval.StartConsumer("eval job", traceParent,
                [new(TelemetryTags.JobId, "job-1")])!;
            return (consumer.TraceId, consumer.ParentSpanId, consumer.Kind, consumer.HasRemoteParent,
                Activity.Current == consumer);
        });

        Assert.Equal(traceId, gotTrace);
        Assert.Equal(senderSpan, gotParent);
        Assert.Equal(ActivityKind.Consumer, kind);
        Assert.True(remote);
        Assert.True(ambientAfter);
        var job = Assert.Single(Stopped("eval job"));
        Assert.Equal("job-1", job.GetTagItem(TelemetryTags.JobId));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not-a-traceparent")]
    [InlineData("00-00000000000000000000000000000000-0000000000000000-01")] // all-zero ids are invalid
    public void MissingOrBadTraceparentStartsANewRootNotAChildOfTheAmbientSpan(string? traceParent)
    {
        using var ambient = _telemetry.Train.StartActivity("ambient")!;
        Activity? consumer = _telemetry.Eval.StartConsumer("job", traceParent);
        Assert.NotNull(consumer);
        Assert.Null(consumer.Parent);
        Assert.Equal(default, consumer.ParentSpanId);
        Assert.NotEqual(ambient.TraceId, consumer.TraceId);
        consumer.Dispose();
        Assert.False(TraceContext.TryExtract(traceParent, out _));
    }

    [Fact]
    public void LinkedRootLinksEveryValidParentAndStartsItsOwnTrace()
    {
        var a = _telemetry.Cluster.StartActivity("request a")!;
        var b = _telemetry.Cluster.StartActivity("request b")!;   // a child of a: same trace, other span
        string?[] parents = [TraceContext.Inject(a), null, "garbage", TraceContext.Inject(b)];
        b.Dispose();
        a.Dispose();

        using var batch = _telemetry.Eval.StartLinkedRoot("eval batch", ActivityKind.Internal, parents)!;
        Assert.NotEqual(a.TraceId, batch.TraceId);
        Assert.Equal(default, batch.ParentSpanId);
        Assert.Equal([a.SpanId, b.SpanId], batch.Links.Select(l => l.Context.SpanId));
    }

    [Fact]
    public void AMarkerIsARootThatHasEndedWhenItsTraceparentIsHandedOut()
    {
        using var ambient = _telemetry.Cluster.StartActivity("ambient")!;
        string? first = _telemetry.Train.WriteMarker("train run start", [], [new(TelemetryTags.RunId, "r1")]);
        string? second = _telemetry.Train.WriteMarker("train run end", [first], [new(TelemetryTags.RunId, "r1")],
            span => span.Fail("diverged"));
        Assert.Same(ambient, Activity.Current);   // the caller's span is left as it was

        var start = Assert.Single(Stopped("train run start"));
        var end = Assert.Single(Stopped("train run end"));
        // Both are complete (stopped) before anyone can parent to or link to them, and neither belongs to the ambient trace.
        Assert.Equal(TraceContext.Inject(start), first);
        Assert.Equal(TraceContext.Inject(end), second);
        Assert.All([start, end], m => Assert.Equal(default, m.ParentSpanId));
        Assert.NotEqual(ambient.TraceId, start.TraceId);
        Assert.Equal(start.SpanId, Assert.Single(end.Links).Context.SpanId);
        Assert.Equal(ActivityStatusCode.Error, end.Status);
        Assert.Equal("r1", end.GetTagItem(TelemetryTags.RunId));
    }

    [Fact]
    public void AHeldLinkedRootIsItsOwnTraceAndNeverTheThreadsCurrentSpan()
    {
        string sender;
        using (var s = _telemetry.Cluster.StartActivity("batch stream send")!)
            sender = TraceContext.Inject(s)!;
        Assert.Null(Activity.Current);
        var held = _telemetry.Eval.StartHeldLinkedRoot("batch stream receive", ActivityKind.Consumer, [sender])!;
        Assert.Null(Activity.Current);
        Assert.Equal(default, held.ParentSpanId);
        Assert.NotEqual(sender.Split('-')[1], held.TraceId.ToHexString());
        Assert.Equal(sender.Split('-')[2], Assert.Single(held.Links).Context.SpanId.ToHexString());
        held.EndHeld();
        Assert.True(held.IsStopped);
        Assert.Null(Activity.Current);
    }

    [Fact]
    public void NoListenerMeansNoSpanAndNoTraceparent()
    {
        using var silent = new LiteVaeTelemetry();   // a fresh instance nobody listens to
        Assert.Null(silent.Eval.StartConsumer("job", "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01"));
        Assert.Null(silent.Cluster.StartActivity("x"));
    }

    [Fact]
    public void FailSetsErrorStatusWithTheMessage()
    {
        using (var span = _telemetry.Cluster.StartActivity("checkpoint"))
            span.Fail(new IOException("disk full: /runs/a"));
        var s = Assert.Single(Stopped("checkpoint"));
        Assert.Equal(ActivityStatusCode.Error, s.Status);
        Assert.Equal("disk full: /runs/a", s.StatusDescription);
        Assert.Single(s.Events, e => e.Name == "exception");
    }

    private List<Activity> Stopped(string name)
    {
        lock (_stopped) return _stopped.Where(a => a.OperationName == name).ToList();
    }
}
