using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Tests.Cluster;
using LiteVae.Model.Checkpoints;
using Xunit.Abstractions;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary>
/// Traces across real processes into a real OTLP backend: a 2-node cluster (coordinator+trainer, data+eval)
/// trains a tiny quickstart; <c>eval --cluster</c>, <c>status</c>, <c>checkpoint</c> and <c>stop</c> talk to it,
/// every process exporting with <c>--otlp</c>. Read back from the backend while the run still trains: no exported
/// span has a parent the backend lacks (what Jaeger shows as a missing root), each step window and checkpoint is a
/// trace of its own carrying the run id and a link to the run's start marker, and each CLI command's span is the
/// root of the node-side spans it caused (across three processes for an evaluation). After the stop: the stop's
/// trace, the run's end marker, the trainer's start under the start marker and the batch streams linked across nodes.
/// </summary>
[Collection(OtelCollection.Name)]
public sealed class ClusterTraceTests(AspireDashboard backend, ITestOutputHelper log) : IAsyncLifetime
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(60), Work = TimeSpan.FromSeconds(90);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-trace-{Guid.NewGuid():N}");
    private readonly List<LiteVaeProcess> _processes = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }

    private LiteVaeProcess Litevae(params string[] args) => Start([.. args, "--otlp", backend.GrpcEndpoint]);

    private LiteVaeProcess Start(string[] args)
    {
        var p = LiteVaeProcess.Start(args,
            new Dictionary<string, string?> { ["OTEL_METRICS_EXPORTER"] = "none" }, NodeProcess.RepoRoot);
        _processes.Add(p);
        return p;
    }

    private string[] Node(string hocon, string roles, int port, int seed) =>
    [
        "node", "--hocon", $"hocon/{hocon}",
        "--set", $"litevae.node.roles=[{roles}]",
        "--set", $"litevae.node.port={port}",
        "--set", $"litevae.node.seed-nodes=[\"127.0.0.1:{seed}\"]",
        "--set", $"litevae.run.run-dir=\"{_runDir}\"",
    ];

    [Fact]
    public async Task EveryTraceIsCompleteWhileTheRunTrainsAndEveryClusterCommandIsOneTraceWithTheNodesSpans()
    {
        var clock = Stopwatch.StartNew();
        int pA = FreePort(), pB = FreePort();
        var a = Litevae([.. Node("coordinator.conf", "coordinator,trainer", pA, pA),
            "--config", "configs/quickstart.conf",
            "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=2",
            "--set", "eval.images=2", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
            "--set", "checkpoint.every-steps=2"]);
        var b = Litevae(Node("eval-node.conf", "data,eval", pB, pA));
        await a.WaitForLine("litevae node [", Startup);
        await b.WaitForLine("litevae node [", Startup);
        string cluster = $"127.0.0.1:{pA}";
        string runId = Path.GetFileName(_runDir);

        // A checkpoint to evaluate (the data node feeds the trainer across processes).
        var until = DateTime.UtcNow + Work;
        while (CheckpointStore.List(Path.Combine(_runDir, "checkpoints")).Count == 0)
        {
            Assert.False(a.HasExited || b.HasExited, $"a node exited:\n{a.Output}\n{b.Output}");
            if (DateTime.UtcNow > until) throw new TimeoutException($"no checkpoint after {Work}:\n{a.Output}\n{b.Output}");
            await Task.Delay(250);
        }
        log.WriteLine($"first checkpoint after {clock.Elapsed.TotalSeconds:F0}s");

        // The eval node registers with the coordinator on its first heartbeat; until then an eval is refused with that reason.
        var eval = Litevae("eval", "--cluster", cluster, "--run-dir", _runDir, "--checkpoint", "last", "--wait");
        while (await eval.WaitForExit(Work) != 0 && eval.Output.Contains("no node with role 'eval'") && DateTime.UtcNow < until)
        {
            await Task.Delay(500);
            eval = Litevae("eval", "--cluster", cluster, "--run-dir", _runDir, "--checkpoint", "last", "--wait");
        }
        Assert.True(await eval.WaitForExit(Work) == 0, eval.Output);
        string accepted = await eval.WaitForLine("accepted", TimeSpan.Zero);
        string jobId = accepted.Split(' ')[1];   // "evaluation <job> of <path> accepted"
        log.WriteLine($"eval done after {clock.Elapsed.TotalSeconds:F0}s");

        // The other verbs that talk to the cluster, traced the same way.
        var status = Litevae("status", "--cluster", cluster, "--run-dir", _runDir, "--json");
        Assert.True(await status.WaitForExit(Work) == 0, status.Output);
        var checkpointCommand = Litevae("checkpoint", "--cluster", cluster, "--run-dir", _runDir);
        Assert.True(await checkpointCommand.WaitForExit(Work) == 0, checkpointCommand.Output);

        // ---- While the run trains: read what the backend has now.
        var live = await backend.WaitForSpans(all =>
            all.Any(s => s.Name == "eval job" && s.Attr(TelemetryTags.JobId) == jobId) &&
            all.Any(s => s.Name == "coordinator status" && s.Attr(TelemetryTags.RunId) == runId) &&
            all.Any(s => s.Name == "coordinator checkpoint" && s.Attr(TelemetryTags.RunId) == runId) &&
            all.Any(s => s.Name == "checkpoint snapshot" && s.Attr(TelemetryTags.Reason) == "requested" && s.Attr(TelemetryTags.RunId) == runId) &&
            all.Count(s => s.Name.StartsWith("train steps ", StringComparison.Ordinal) && s.Attr(TelemetryTags.RunId) == runId) >= 2,
            TimeSpan.FromSeconds(30));
        Assert.False(a.HasExited || b.HasExited, "the run must still be training when the backend is read");
        log.WriteLine($"{live.Count} spans while training, after {clock.Elapsed.TotalSeconds:F0}s");
        AssertNoMissingParents(live);

        // The run so far: a complete start marker, and windows that are their own traces linked to it.
        var marker = live.Single(s => s.Name == "train run start" && s.Attr("litevae.run.dir") == _runDir);
        Assert.Null(marker.ParentSpanId);
        Assert.Equal(runId, marker.Attr(TelemetryTags.RunId));
        Assert.True(marker.EndNanos > 0 && marker.EndNanos >= marker.StartNanos);
        var windows = live.Where(s => s.Name.StartsWith("train steps ", StringComparison.Ordinal) && s.Attr(TelemetryTags.RunId) == runId).ToList();
        Assert.All(windows, w =>
        {
            Assert.Equal($"train steps {w.Attr(TelemetryTags.StepFirst)}-{w.Attr(TelemetryTags.StepLast)}", w.Name);
            Assert.Null(w.ParentSpanId);
            Assert.Contains((marker.TraceId, marker.SpanId), w.Links);
            Assert.NotEqual(marker.TraceId, w.TraceId);
            Assert.Equal("litevae-coordinator-trainer", w.Service);
            Assert.Equal("cpu", w.Attr(TelemetryTags.Device));
        });
        Assert.Equal(windows.Count, windows.Select(w => w.TraceId).Distinct().Count());   // one trace per window
        // An interval checkpoint: its snapshot is the root of its trace (linked to the run), the write its child.
        var snapshot = live.First(s => s.Name == "checkpoint snapshot" && s.Attr(TelemetryTags.Reason) == "interval");
        Assert.Null(snapshot.ParentSpanId);
        Assert.Contains((marker.TraceId, marker.SpanId), snapshot.Links);
        Assert.Equal(runId, snapshot.Attr(TelemetryTags.RunId));
        Assert.Contains(live, s => s.Name == "checkpoint write" && s.ParentSpanId == snapshot.SpanId && s.Attr(TelemetryTags.Step) == snapshot.Attr(TelemetryTags.Step));

        // eval --cluster: client → coordinator → eval node, one trace, three processes. The client's root ends once the
        // request is accepted (the backend has it while the job runs); its wait is a child that ends with the job.
        var client = live.Single(s => s.Name == "litevae eval" && s.Attr(TelemetryTags.JobId) == jobId);
        var coordinator = live.Single(s => s.Name == "coordinator eval" && s.Attr(TelemetryTags.JobId) == jobId);
        var job = live.Single(s => s.Name == "eval job" && s.Attr(TelemetryTags.JobId) == jobId);
        var wait = live.Single(s => s.Name == "litevae eval wait" && s.Attr(TelemetryTags.JobId) == jobId);
        Assert.Null(client.ParentSpanId);
        Assert.All([coordinator, job, wait], s => Assert.Equal(client.TraceId, s.TraceId));
        Assert.Equal(client.SpanId, coordinator.ParentSpanId);
        Assert.Contains((marker.TraceId, marker.SpanId), coordinator.Links);
        Assert.Equal(coordinator.SpanId, job.ParentSpanId);
        Assert.Equal(client.SpanId, wait.ParentSpanId);
        Assert.Equal(("litevae-cli", "litevae-coordinator-trainer", "litevae-data-eval"), (client.Service, coordinator.Service, job.Service));
        Assert.NotEqual(client.Resource["service.instance.id"], coordinator.Resource["service.instance.id"]);
        Assert.Equal((ExportedSpan.KindClient, ExportedSpan.KindConsumer, ExportedSpan.KindConsumer), (client.Kind, coordinator.Kind, job.Kind));
        Assert.Equal("eval", client.Attr(TelemetryTags.Command));
        string checkpoint = coordinator.Attr(TelemetryTags.Checkpoint)!;
        Assert.Equal(checkpoint, job.Attr(TelemetryTags.Checkpoint));
        Assert.Equal(checkpoint, client.Attr(TelemetryTags.Checkpoint));
        Assert.StartsWith(Path.Combine(_runDir, "checkpoints"), checkpoint);
        Assert.Equal("2", job.Attr(TelemetryTags.Samples));
        Assert.True(double.TryParse(job.Attr("litevae.eval.psnr"), System.Globalization.CultureInfo.InvariantCulture, out double psnr) && psnr > 0,
            job.ToString());
        Assert.All([client, coordinator, job, wait], s => Assert.Equal(0, s.StatusCode));
        Assert.True(client.StartNanos <= coordinator.StartNanos && coordinator.EndNanos <= client.EndNanos);
        Assert.True(job.StartNanos >= coordinator.StartNanos && client.EndNanos <= wait.StartNanos && job.EndNanos <= wait.EndNanos);

        // status and checkpoint: the CLI's span is the parent of the coordinator's; a commanded checkpoint's snapshot
        // and write continue that trace.
        var (statusClient, statusNode) = CommandPair(live, "status", marker);
        Assert.Equal(ExportedSpan.KindClient, statusClient.Kind);
        var (checkpointClient, checkpointNode) = CommandPair(live, "checkpoint", marker);
        var requested = live.Where(s => s.Name == "checkpoint snapshot" && s.Attr(TelemetryTags.Reason) == "requested").ToList();
        Assert.NotEmpty(requested);
        Assert.All(requested, r => Assert.Equal((checkpointClient.TraceId, checkpointNode.SpanId), (r.TraceId, r.ParentSpanId)));
        // (The command answers with the first checkpoint at or after the step it was asked at: an interval one may come first.)
        string printed = (await checkpointCommand.WaitForLine("checkpoint step", TimeSpan.Zero)).Split(' ')[2].TrimEnd(':');

        // ---- Stop, then the rest of the run's shape.
        var stop = Litevae("stop", "--cluster", cluster, "--run-dir", _runDir);
        Assert.True(await stop.WaitForExit(Work) == 0, stop.Output);
        Assert.Equal(0, await a.WaitForExit(Work));   // exporters flush when a node stops
        await b.WaitForExit(Work);
        log.WriteLine($"cluster stopped after {clock.Elapsed.TotalSeconds:F0}s");
        // Evaluations pinned their checkpoints against retention (every 2 steps, keep-last 2) only while
        // they lasted: a stopped coordinator holds none.
        string pins = Path.Combine(_runDir, "checkpoints", CheckpointStore.PinsDir);
        Assert.True(Directory.Exists(pins), "no evaluated checkpoint was ever pinned");
        Assert.Empty(Directory.EnumerateFiles(pins));

        var spans = await backend.WaitForSpans(all =>
            all.Any(s => s.Name == "train run end" && s.Attr("litevae.run.dir") == _runDir) &&
            all.Any(s => s.Name == "coordinator stop" && s.Attr(TelemetryTags.RunId) == runId), TimeSpan.FromSeconds(30));
        AssertNoMissingParents(spans);
        var (stopClient, stopNode) = CommandPair(spans, "stop", marker);
        Assert.All(spans.Where(s => s.Name == "checkpoint snapshot" && s.Attr(TelemetryTags.Reason) == "final" && s.Attr(TelemetryTags.RunId) == runId),
            f => Assert.Equal((stopClient.TraceId, stopNode.SpanId), (f.TraceId, f.ParentSpanId)));
        var end = spans.Single(s => s.Name == "train run end" && s.Attr("litevae.run.dir") == _runDir);
        Assert.Null(end.ParentSpanId);
        Assert.Contains((marker.TraceId, marker.SpanId), end.Links);
        Assert.Equal("stopped", end.Attr(TelemetryTags.Reason));
        Assert.True(long.Parse(end.Attr(TelemetryTags.StepLast)!) >= long.Parse(printed), end.ToString());
        Assert.Equal(0, end.StatusCode);

        // The trainer's start (model build, restore) is the start marker's child: the marker ended before it began.
        var trainerStart = spans.Single(s => s.Name == "trainer start" && s.ParentSpanId == marker.SpanId);
        Assert.Equal(marker.TraceId, trainerStart.TraceId);
        Assert.Equal(("cpu", 0), (trainerStart.Attr(TelemetryTags.Device), trainerStart.StatusCode));
        Assert.True(trainerStart.StartNanos >= marker.EndNanos);
        // A node-to-node batch stream: each end is its own trace, the sender's linked to the run, the receiver's to the
        // sender's (a stream voided by a new plan before it was offered has no receiver).
        var (send, receive) = spans.Where(s => s.Name == "batch stream send" && s.Links.Contains((marker.TraceId, marker.SpanId)))
            .SelectMany(s => spans.Where(r => r.Name == "batch stream receive" && r.Links.Contains((s.TraceId, s.SpanId))).Select(r => (s, r))).First();
        Assert.Equal((null, null), (send.ParentSpanId, receive.ParentSpanId));
        Assert.Equal("litevae-data-eval", send.Service);
        Assert.Equal(ExportedSpan.KindProducer, send.Kind);
        Assert.Equal("litevae-coordinator-trainer", receive.Service);
        Assert.True(long.Parse(receive.Attr(TelemetryTags.Bytes)!) > 0, receive.ToString());
        log.WriteLine($"asserted after {clock.Elapsed.TotalSeconds:F0}s");
    }

    /// <summary>What Jaeger shows as a missing root: a span of this test's processes whose parent the backend does not
    /// have (the backend is shared with the collection's other tests, whose spans are not this test's business).</summary>
    private static void AssertNoMissingParents(List<ExportedSpan> spans)
    {
        string[] ours = ["litevae-cli", "litevae-coordinator-trainer", "litevae-data-eval"];
        var ids = spans.Select(s => (s.TraceId, s.SpanId)).ToHashSet();
        var orphans = spans.Where(s => ours.Contains(s.Service) && s.ParentSpanId is { } p && !ids.Contains((s.TraceId, p))).ToList();
        Assert.Contains(spans, s => ours.Contains(s.Service) && s.ParentSpanId is not null);   // the check has something to check
        Assert.True(orphans.Count == 0, "spans whose parent was not exported:\n" + string.Join("\n", orphans.Select(o => $"  {o}")));
    }

    /// <summary>The CLI's span of <paramref name="verb"/> and the coordinator's handling of it: parent and child, one trace.</summary>
    private static (ExportedSpan Client, ExportedSpan Node) CommandPair(List<ExportedSpan> spans, string verb, ExportedSpan marker)
    {
        var client = spans.Single(s => s.Name == $"litevae {verb}");
        var node = spans.Single(s => s.Name == $"coordinator {verb}");
        Assert.Null(client.ParentSpanId);
        Assert.Equal((client.TraceId, client.SpanId), (node.TraceId, node.ParentSpanId));
        Assert.Equal(("litevae-cli", "litevae-coordinator-trainer"), (client.Service, node.Service));
        Assert.Equal(verb, client.Attr(TelemetryTags.Command));
        Assert.Contains((marker.TraceId, marker.SpanId), node.Links);   // the command's trace links to the run
        return (client, node);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
