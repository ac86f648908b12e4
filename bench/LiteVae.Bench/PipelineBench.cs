using System.Diagnostics;
using System.Globalization;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using LiteVae.Actors;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Hosting;
using LiteVae.Actors.Tests.Synthetic;
using LiteVae.Actors.Training;

namespace LiteVae.Bench;

/// <summary>
/// The data path under a trainer stand-in that consumes batches at a fixed rate (a sleep per step), through
/// the real actors: DataNode (supervised readers → decode ×W → batch) → intake → DeviceTrainer. Decoding
/// is a synthetic CPU cost per sample, so the numbers isolate the pipeline, not the JPEG codec.
/// For 1, 2 and 4 decode workers, in one process (channels) and across two processes (StreamRef of
/// chunks over loopback): batches/s delivered and the fraction of time the trainer waited for data;
/// across processes also MB/s. Then, under a very slow consumer, the bytes each stage holds: its bound
/// and the peak.
/// Usage: litevae-bench pipeline [--steps 120] [--step-ms 60] [--decode-ms 5] [--batch 16] [--size 128] [--workers 1,2,4]
///        [--shards 16x200] [--out FILE]   (--shards: how many shards × samples per shard; an epoch smaller than a
///        batch or two shows the cost of epoch turnover, where each epoch's leases go through the coordinator)
/// </summary>
internal sealed class PipelineBench : IBenchmark
{
    public string Name => "pipeline";

    public string Description => "data wait and batches/s with 1/2/4 decode workers, in one process and across two; stage memory bounds";

    private sealed record Opts(int Steps, int StepMs, double DecodeMs, int Batch, int Size, int[] Workers, string? Out, string ShardShape = "16x200")
    {
        public static Opts Parse(string[] a)
        {
            string? Get(string k) { int i = Array.IndexOf(a, k); return i >= 0 && i + 1 < a.Length ? a[i + 1] : null; }
            return new Opts(int.Parse(Get("--steps") ?? "120"), int.Parse(Get("--step-ms") ?? "60"),
                double.Parse(Get("--decode-ms") ?? "5", CultureInfo.InvariantCulture), int.Parse(Get("--batch") ?? "16"),
                int.Parse(Get("--size") ?? "128"), (Get("--workers") ?? "1,2,4").Split(',').Select(int.Parse).ToArray(), Get("--out"), CheckedShards(Get("--shards") ?? "16x200"));
        }
    }

    public int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--data-node") return RunDataNode(args);
        var o = Opts.Parse(args);
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"# pipeline benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture,
            $"Machine: {Environment.ProcessorCount} cores ({Environment.OSVersion}), shared with other builds while measured. " +
            $"Trainer stand-in: {o.StepMs} ms per step, batch {o.Batch} of {o.Size}², uint8 ({Bytes(o.Batch * 3L * o.Size * o.Size)} per batch). " +
            $"Decode stand-in: {o.DecodeMs} ms of CPU per sample. Shards: {o.ShardShape} (count × samples). Needed to keep the trainer fed: {1000.0 / o.StepMs:F1} batches/s = " +
            $"{o.Batch * 1000.0 / o.StepMs:F0} samples/s, i.e. {o.Batch * o.DecodeMs / o.StepMs:F2} decode cores.");
        report.AppendLine();
        report.AppendLine("| transport | decode workers | batches/s | trainer waiting for data | MB/s across nodes | steps |");
        report.AppendLine("|---|---|---|---|---|---|");
        foreach (bool remote in new[] { false, true })
            foreach (int w in o.Workers)
            {
                var r = RunTraining(o, w, remote);
                string line = string.Create(CultureInfo.InvariantCulture,
                    $"| {(remote ? "two processes (StreamRef, 256 KiB chunks)" : "one process (channel)")} | {w} | {r.BatchesPerSecond:F1} | {r.WaitFraction * 100:F1}% | {(remote ? r.MBps.ToString("F1", CultureInfo.InvariantCulture) : "-")} | {o.Steps} |");
                Console.WriteLine(line);
                report.AppendLine(line);
            }
        report.AppendLine();
        report.AppendLine("Memory per stage under a slow consumer (one batch every 250 ms, 4 decode workers, 6 s), bytes held:");
        report.AppendLine();
        report.AppendLine("| stage | bound | peak |");
        report.AppendLine("|---|---|---|");
        foreach (var (stage, bound, peak) in SlowConsumer(o))
        {
            string line = $"| {stage} | {Bytes(bound)} | {Bytes(peak)} |";
            Console.WriteLine(line);
            report.AppendLine(line);
        }
        string outPath = o.Out ?? Path.Combine("bench", "results", $"pipeline-{DateTime.UtcNow:yyyy-MM-dd}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
        File.WriteAllText(outPath, report.ToString());
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private sealed record Result(double BatchesPerSecond, double WaitFraction, double MBps);

    private static Config NodeConfig(IEnumerable<string> roles) =>
        ConfigurationFactory.ParseString($"akka.cluster.roles = [{string.Join(",", roles)}]\nakka.loglevel = WARNING\nakka.remote.dot-netty.tcp.port = 0")
            .WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "base.conf"))));

    private static DataRoleOptions DataRole(Opts o, int workers, string node) =>
        new(new DataNodeSettings(node, 2, new PipelineBounds(workers, 32, 32, 4), 256 * 1024, TimeSpan.FromMilliseconds(500)),
            _ => new DataPipelineParts(new DataShape(o.Batch, o.Size, o.Size), Shards(o), new SyntheticDecoder(0, TimeSpan.FromMilliseconds(o.DecodeMs))));

    /// <summary><c>--shards NxM</c> (N shards of M samples), checked before any node starts.</summary>
    private static string CheckedShards(string value)
    {
        var nm = value.Split('x');
        if (nm.Length != 2 || !int.TryParse(nm[0], CultureInfo.InvariantCulture, out int count) || !int.TryParse(nm[1], CultureInfo.InvariantCulture, out int size)
            || count < 1 || size < 1)
            throw new ArgumentException($"pipeline: --shards {value}: use COUNTxSAMPLES, e.g. 16x200.");
        return value;
    }

    private static SyntheticShards Shards(Opts o)
    {
        var nm = o.ShardShape.Split('x').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return new(Enumerable.Repeat(nm[1], nm[0]).ToArray(), encodedBytes: 40_000);
    }

    private static Result RunTraining(Opts o, int workers, bool remote)
    {
        string runDir = Directory.CreateTempSubdirectory("litevae-bench-").FullName;
        var roles = remote ? new[] { ClusterRoles.Coordinator, ClusterRoles.Trainer } : [ClusterRoles.Coordinator, ClusterRoles.Trainer, ClusterRoles.Data];
        var system = ActorSystem.Create(ClusterRoles.SystemName, NodeConfig(roles));
        Process? child = null;
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            cluster.Join(cluster.SelfAddress);
            var engine = new SyntheticEngine.Options { StepTime = TimeSpan.FromMilliseconds(o.StepMs) };
            var store = new SyntheticStore();
            var plan = new RunPlan("bench = 1", runDir, Shards(o).Paths, 1, o.Steps, 1_000_000, 10, false);
            var proxy = RoleStarter.StartCoordinatorProxy(system);
            RoleStarter.StartCoordinator(system, new CoordinatorRoleOptions(plan, store, CoordinatorSettings.Default with { LeaveClusterWhenStopped = false }));
            var finished = new TaskCompletionSource<RunFinished>();
            var listener = system.ActorOf(Props.Create(() => new Listener(finished)));
            system.EventStream.Subscribe(listener, typeof(RunFinished));
            long bytes0 = Interlocked.Read(ref BatchIntake.BytesReceived);
            var first = new TaskCompletionSource<DateTime>();
            RoleStarter.StartTrainer(system, new TrainerRoleOptions(new TrainerSettings("bench", TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2)),
                () => new TimedEngine(new SyntheticEngine(engine), first), store, 4, "litevae.gpu-dispatcher",
                TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), proxy);
            if (remote)
            {
                var self = cluster.SelfAddress;
                // The same benchmark binary, as a data node (run through `dotnet` when this one was).
                string exe = Environment.ProcessPath!;
                var argv = new List<string>();
                if (Path.GetFileNameWithoutExtension(exe) == "dotnet") argv.Add(typeof(PipelineBench).Assembly.Location);
                argv.AddRange(["pipeline", "--data-node", $"{self.Host}:{self.Port}", workers.ToString(CultureInfo.InvariantCulture),
                    o.Batch.ToString(CultureInfo.InvariantCulture), o.Size.ToString(CultureInfo.InvariantCulture),
                    o.DecodeMs.ToString(CultureInfo.InvariantCulture), o.ShardShape]);
                child = Process.Start(new ProcessStartInfo(exe, argv) { UseShellExecute = false });
            }
            else
            {
                RoleStarter.StartDataNode(system, DataRole(o, workers, "local"), proxy);
            }
            if (!finished.Task.Wait(TimeSpan.FromMinutes(2)))
                throw new TimeoutException("the benchmark run did not finish in 2 minutes");
            // From the first step (the pipeline warmed up) to the last: time not spent stepping is data wait.
            var wall = (DateTime.UtcNow - first.Task.Result).TotalSeconds;
            int steps = o.Steps - 1;
            double busy = steps * o.StepMs / 1000.0;
            double mb = (Interlocked.Read(ref BatchIntake.BytesReceived) - bytes0) / 1e6;
            return new Result(steps / wall, Math.Max(0, 1 - busy / wall), mb / wall);
        }
        finally
        {
            if (child is { HasExited: false }) { child.Kill(); child.WaitForExit(); }
            system.Terminate().Wait(TimeSpan.FromSeconds(20));
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    /// <summary>The child process of the two-process runs: a data node joining the parent's cluster.</summary>
    private static int RunDataNode(string[] a)
    {
        var o = new Opts(0, 0, double.Parse(a[5], CultureInfo.InvariantCulture), int.Parse(a[3]), int.Parse(a[4]), [], null, a[6]);
        var system = ActorSystem.Create(ClusterRoles.SystemName, NodeConfig([ClusterRoles.Data]));
        var parts = a[1].Split(':');
        Akka.Cluster.Cluster.Get(system).Join(new Address("akka.tcp", ClusterRoles.SystemName, parts[0], int.Parse(parts[1])));
        var proxy = RoleStarter.StartCoordinatorProxy(system);
        RoleStarter.StartDataNode(system, DataRole(o, int.Parse(a[2]), "child"), proxy);
        system.WhenTerminated.Wait();
        return 0;
    }

    private static IEnumerable<(string Stage, long Bound, long Peak)> SlowConsumer(Opts o)
    {
        var shards = Shards(o);
        var parts = new DataPipelineParts(new DataShape(o.Batch, o.Size, o.Size), shards, new SyntheticDecoder(0, TimeSpan.FromMilliseconds(o.DecodeMs)));
        var bounds = new PipelineBounds(4, 32, 32, 4);
        var pipeline = new BatchPipeline(parts, bounds, 1);
        var cts = new CancellationTokenSource(TimeSpan.FromSeconds(6));
        var readers = Enumerable.Range(0, 2).Select(shard => Task.Run(async () =>
        {
            var lease = new Actors.Protocol.DataProtocol.ShardLeased("c", 1, shard, 0, shard, shards.Paths[shard], 1, Actors.Protocol.IndexRanges.Empty, null);
            var tracker = new LeaseTracker(lease, _ => { });
            try
            {
                await foreach (var s in shards.ReadAsync(new ShardReadRequest(0, shard, lease.ShardPath, 1, lease.Skip), new ShardReadCounts(), cts.Token))
                    await pipeline.WriteAsync(s, tracker, cts.Token);
            }
            catch (OperationCanceledException) { }
        })).ToArray();
        var consumer = Task.Run(async () =>
        {
            try
            {
                while (!cts.IsCancellationRequested)
                {
                    await Task.Delay(250, cts.Token);
                    if (pipeline.Output.TryRead(out var b)) b.Dispose();
                }
            }
            catch (OperationCanceledException) { }
        });
        Task.WaitAll([.. readers, consumer]);
        long batch = (long)o.Batch * 3 * o.Size * o.Size, sample = 3L * o.Size * o.Size;
        var result = new List<(string, long, long)>
        {
            ("raw (encoded samples, 40 KB each; window of raw + decoding + decoded samples)", 40_000L * bounds.Window, pipeline.RawBytes.Peak),
            ("decoded (3×H×W samples, same window)", sample * bounds.Window, pipeline.DecodedBytes.Peak),
            ("batches (assembling + output queue + consumer's)", batch * (bounds.OutputBatches + 2), pipeline.OutputBytes.Peak),
            ("whole data node (bound: window × (encoded + decoded) + batches)", pipeline.BoundBytes(40_000) + batch, pipeline.RawBytes.Peak + pipeline.DecodedBytes.Peak + pipeline.OutputBytes.Peak),
            ("stream between nodes (stream-ref buffer 8 × 256 KiB)", 8L * 256 * 1024, -1),
            ("trainer intake (4 batches + 1 partial reassembly)", batch * 5, -1),
        };
        pipeline.DisposeAsync().AsTask().Wait();
        return result;
    }

    private static string Bytes(long b) => b < 0 ? "(bounded by config; not instrumented)" : b >= 1 << 20
        ? string.Create(CultureInfo.InvariantCulture, $"{b / 1048576.0:F1} MiB") : string.Create(CultureInfo.InvariantCulture, $"{b / 1024.0:F0} KiB");

    private sealed class Listener : ReceiveActor
    {
        public Listener(TaskCompletionSource<RunFinished> done) => Receive<RunFinished>(f => done.TrySetResult(f));
    }

    /// <summary>Notes when the first step ran (the pipeline is warm from then on).</summary>
    private sealed class TimedEngine(SyntheticEngine inner, TaskCompletionSource<DateTime> first) : ITrainingEngine
    {
        public string Device => inner.Device;
        public long Step => inner.Step;
        public RestoredState Initialize(string h, string r, string? f) => inner.Initialize(h, r, f);

        public IReadOnlyDictionary<string, double>? TrainStep(PixelBatch batch, bool readLosses)
        {
            var r = inner.TrainStep(batch, readLosses);
            first.TrySetResult(DateTime.UtcNow);
            return r;
        }

        public ICheckpointSnapshot Snapshot(string dataPosition) => inner.Snapshot(dataPosition);
        public void Dispose() => inner.Dispose();
    }
}
