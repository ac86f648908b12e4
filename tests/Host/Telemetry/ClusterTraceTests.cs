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
/// trains a tiny quickstart and an <c>eval --cluster</c> command evaluates its last checkpoint, every process
/// exporting with <c>--otlp</c>. Read back from the backend: the client's command span, the coordinator's
/// handling of it and the eval node's job form one trace tree across three processes; the run's span on the
/// coordinator node parents the trainer's step windows and checkpoints there and the data node's shard reads
/// and batch stream, whose receiving end on the trainer node is a child of the sending end.
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
    public async Task ClientCoordinatorAndEvalNodeSpansFormOneTraceAcrossProcesses()
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

        var stop = Start(["stop", "--cluster", cluster, "--run-dir", _runDir]);
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
            all.Any(s => s.Name == "eval job" && s.Attr(TelemetryTags.JobId) == jobId) &&
            all.Any(s => s.Name == "train run" && s.Attr("litevae.run.dir") == _runDir), TimeSpan.FromSeconds(30));

        // client → coordinator → eval node: one trace, three processes.
        var client = spans.Single(s => s.Name == "litevae eval" && s.Attr(TelemetryTags.JobId) == jobId);
        var coordinator = spans.Single(s => s.Name == "coordinator eval" && s.Attr(TelemetryTags.JobId) == jobId);
        var job = spans.Single(s => s.Name == "eval job" && s.Attr(TelemetryTags.JobId) == jobId);
        Assert.Null(client.ParentSpanId);
        Assert.Equal(client.TraceId, coordinator.TraceId);
        Assert.Equal(client.TraceId, job.TraceId);
        Assert.Equal(client.SpanId, coordinator.ParentSpanId);
        Assert.Equal(coordinator.SpanId, job.ParentSpanId);
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
        Assert.All([client, coordinator, job], s => Assert.Equal(0, s.StatusCode));
        Assert.True(client.StartNanos <= coordinator.StartNanos && coordinator.EndNanos <= client.EndNanos);
        Assert.True(job.StartNanos >= coordinator.StartNanos && job.EndNanos <= client.EndNanos);

        // The run: its span on the coordinator node parents work in both node processes.
        var run = spans.Single(s => s.Name == "train run" && s.Attr("litevae.run.dir") == _runDir);
        string runId = Path.GetFileName(_runDir);
        Assert.Equal(runId, run.Attr(TelemetryTags.RunId));
        var children = spans.Where(s => s.TraceId == run.TraceId && s.ParentSpanId == run.SpanId).ToList();
        var windows = children.Where(s => s.Name.StartsWith("train steps ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(windows);
        Assert.All(windows, w =>
        {
            Assert.Equal($"train steps {w.Attr(TelemetryTags.StepFirst)}-{w.Attr(TelemetryTags.StepLast)}", w.Name);
            Assert.Equal(runId, w.Attr(TelemetryTags.RunId));
            Assert.Equal("litevae-coordinator-trainer", w.Service);
            Assert.Equal("cpu", w.Attr(TelemetryTags.Device));
        });
        Assert.Contains(children, s => s.Name == "trainer start" && s.Attr(TelemetryTags.Device) == "cpu" && s.StatusCode == 0);
        var snapshot = children.First(s => s.Name == "checkpoint snapshot");
        Assert.Contains(spans, s => s.Name == "checkpoint write" && s.ParentSpanId == snapshot.SpanId && s.Attr(TelemetryTags.Step) == snapshot.Attr(TelemetryTags.Step));
        // A node-to-node batch stream: the sender's span parents the receiver's (a stream voided by a new plan
        // before it was offered has no receiver).
        var (send, receive) = children.Where(s => s.Name == "batch stream send")
            .SelectMany(s => spans.Where(r => r.Name == "batch stream receive" && r.ParentSpanId == s.SpanId).Select(r => (s, r))).First();
        Assert.Equal("litevae-data-eval", send.Service);
        Assert.Equal(ExportedSpan.KindProducer, send.Kind);
        Assert.Equal("litevae-coordinator-trainer", receive.Service);
        Assert.True(long.Parse(receive.Attr(TelemetryTags.Bytes)!) > 0, receive.ToString());
        log.WriteLine($"asserted after {clock.Elapsed.TotalSeconds:F0}s");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
