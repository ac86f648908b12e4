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
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;

namespace LiteVae.Bench;

/// <summary>
/// The data path of a run, through the real actors and the real data pipeline on real photographs (JPEG
/// decode, stochastic rescale, crop): Coordinator leases → DataNode → DataPipeline (read at random, decode
/// ×W straight into the batch) → trainer intake → DeviceTrainer, with a trainer stand-in that takes a fixed
/// time per step (0: as fast as batches come, which measures the data path's own throughput). For each
/// decode-worker count (the experiment's data.decode-workers), in one process and, with --remote, with the
/// data node in a second process (StreamRef of chunks over loopback): images/s delivered and the share of
/// time the trainer waited for data. Then the batch buffers a data pipeline holds under a slow consumer.
/// Usage: litevae-bench pipeline [--source "samples/shards/train-*.tar"] [--resolution 128] [--batch 16] [--steps 60]
///        [--step-ms 0] [--workers 1,2,4,8] [--remote] [--out FILE]
/// </summary>
internal sealed class PipelineBench : IBenchmark
{
    public string Name => "pipeline";

    public string Usage => """
        usage: litevae-bench pipeline [--source "samples/shards/train-*.tar"] [--resolution 128] [--batch 16] [--steps 60]
               [--step-ms 0] [--workers 1,2,4,8] [--remote] [--out FILE]
        """;

    public string Description => "images/s and data wait of the real data path by decode-worker count, in one process and across two; buffers held";

    private sealed record Opts(string Source, int Resolution, int Batch, int Steps, int StepMs, int[] Workers, bool Remote, string? Out)
    {
        public static Opts Parse(string[] a)
        {
            string? Get(string k) { int i = Array.IndexOf(a, k); return i >= 0 && i + 1 < a.Length ? a[i + 1] : null; }
            var inv = CultureInfo.InvariantCulture;
            return new Opts(Get("--source") ?? "samples/shards/train-*.tar", int.Parse(Get("--resolution") ?? "128", inv), int.Parse(Get("--batch") ?? "16", inv),
                int.Parse(Get("--steps") ?? "60", inv), int.Parse(Get("--step-ms") ?? "0", inv),
                (Get("--workers") ?? "1,2,4,8").Split(',').Select(w => int.Parse(w, inv)).ToArray(), a.Contains("--remote"), Get("--out"));
        }

        public DataConfig Data(int workers) => new()
        {
            Source = [Source], Resolution = Resolution, BatchSize = Batch, DecodeWorkers = workers, Readers = Math.Max(2, workers / 2),
            PrefetchBatches = 2, Seed = 1,
        };
    }

    private sealed record Result(double ImagesPerSecond, double WaitFraction, double MBps);

    public int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--data-node") return RunDataNode(args);
        var o = Opts.Parse(args);
        var index = o.Data(1).LoadIndex(_ => { });
        if (index.TotalSamples == 0) throw new ArgumentException($"pipeline: --source {o.Source} has no readable sample.");
        var inv = CultureInfo.InvariantCulture;
        var report = new StringBuilder();
        report.AppendLine(inv, $"# pipeline benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        report.AppendLine();
        string trainer = o.StepMs == 0 ? "takes each batch as soon as it is there (the data path's own throughput)." : $"{o.StepMs} ms per step.";
        report.AppendLine(inv,
            $"Machine: {Environment.ProcessorCount} cores ({Environment.OSVersion}). Data: {o.Source} ({index.Shards.Count} shards, {index.TotalSamples} " +
            $"photographs an epoch), decoded, rescaled and cropped to {o.Resolution}², batch {o.Batch}. Trainer stand-in: {trainer} " +
            $"{o.Steps} steps per row, timed from the first step on.");
        report.AppendLine();
        report.AppendLine("| transport | data.decode-workers | images/s | trainer waiting for data | MB/s across nodes |");
        report.AppendLine("|---|---|---|---|---|");
        foreach (bool remote in o.Remote ? new[] { false, true } : [false])
            foreach (int w in o.Workers)
            {
                var r = RunTraining(o, w, remote);
                string line = string.Create(inv,
                    $"| {(remote ? "two processes (StreamRef, 256 KiB chunks)" : "one process")} | {w} | {r.ImagesPerSecond:F1} | {r.WaitFraction * 100:F1}% | {(remote ? r.MBps.ToString("F1", inv) : "-")} |");
                Console.WriteLine(line);
                report.AppendLine(line);
            }
        report.AppendLine();
        var (allocated, bound) = SlowConsumer(o, index);
        string memory = string.Create(inv,
            $"Under a consumer that takes one batch every 250 ms for 4 s (prefetch-batches 2), the pipeline allocated {allocated} batch buffers " +
            $"of {o.Batch * 3L * o.Resolution * o.Resolution / 1024.0:F0} KiB; its bound is {bound} (prefetch being filled + prefetch waiting + 2).");
        Console.WriteLine(memory);
        report.AppendLine(memory);
        string outPath = o.Out ?? Path.Combine("bench", "results", $"pipeline-{DateTime.UtcNow:yyyy-MM-dd}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
        File.WriteAllText(outPath, report.ToString());
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private static Config NodeConfig(IEnumerable<string> roles) =>
        ConfigurationFactory.ParseString($"akka.cluster.roles = [{string.Join(",", roles)}]\nakka.loglevel = WARNING\nakka.remote.dot-netty.tcp.port = 0")
            .WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "base.conf"))));

    private static DataRoleOptions DataRole(DataConfig data, string node) =>
        new(new DataNodeSettings(node, 2, 256 * 1024, TimeSpan.FromMilliseconds(500)), TestShards.Binder(data));

    private static Result RunTraining(Opts o, int workers, bool remote)
    {
        string runDir = Directory.CreateTempSubdirectory("litevae-bench-").FullName;
        var data = o.Data(workers);
        var order = data.CreateOrder(data.LoadIndex(_ => { }), DataUse.Train);
        var roles = remote ? new[] { ClusterRoles.Coordinator, ClusterRoles.Trainer } : [ClusterRoles.Coordinator, ClusterRoles.Trainer, ClusterRoles.Data];
        var system = ActorSystem.Create(ClusterRoles.SystemName, NodeConfig(roles));
        Process? child = null;
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            cluster.Join(cluster.SelfAddress);
            var engine = new SyntheticEngine.Options { StepTime = TimeSpan.FromMilliseconds(o.StepMs), Verify = false };
            var store = new SyntheticStore();
            var plan = new RunPlan("bench = 1", runDir, order.Fingerprint, order.SamplesPerEpoch, data.ResolveShards().Count, o.Batch, o.Steps,
                1_000_000, 10, false);
            var proxy = RoleStarter.StartCoordinatorProxy(system);
            RoleStarter.StartCoordinator(system, new CoordinatorRoleOptions(plan, store, CoordinatorSettings.Default with { LeaveClusterWhenStopped = false }));
            var finished = new TaskCompletionSource<RunFinished>();
            var listener = system.ActorOf(Props.Create(() => new Listener(finished)));
            system.EventStream.Subscribe(listener, typeof(RunFinished));
            long bytes0 = Interlocked.Read(ref BatchIntake.BytesReceived);
            var first = new TaskCompletionSource<DateTime>();
            RoleStarter.StartTrainer(system, new TrainerRoleOptions(
                new TrainerSettings("bench", TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2), TestShards.Binder(data)),
                () => new TimedEngine(new SyntheticEngine(engine), first), store, 4, "litevae.gpu-dispatcher",
                TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), proxy);
            if (remote)
            {
                var self = cluster.SelfAddress;
                // The same benchmark binary, as a data node (run through `dotnet` when this one was).
                string exe = Environment.ProcessPath!;
                var argv = new List<string>();
                if (Path.GetFileNameWithoutExtension(exe) == "dotnet") argv.Add(typeof(PipelineBench).Assembly.Location);
                argv.AddRange(["pipeline", "--data-node", $"{self.Host}:{self.Port}", o.Source, o.Resolution.ToString(CultureInfo.InvariantCulture),
                    o.Batch.ToString(CultureInfo.InvariantCulture), workers.ToString(CultureInfo.InvariantCulture)]);
                child = Process.Start(new ProcessStartInfo(exe, argv) { UseShellExecute = false });
            }
            else
            {
                RoleStarter.StartDataNode(system, DataRole(data, "local"), proxy);
            }
            if (!finished.Task.Wait(TimeSpan.FromMinutes(5)))
                throw new TimeoutException("the benchmark run did not finish in 5 minutes");
            // From the first step (the pipeline warmed up) to the last: time not spent stepping is data wait.
            var wall = (DateTime.UtcNow - first.Task.Result).TotalSeconds;
            int steps = o.Steps - 1;
            double busy = steps * o.StepMs / 1000.0;
            double mb = (Interlocked.Read(ref BatchIntake.BytesReceived) - bytes0) / 1e6;
            return new Result(steps * o.Batch / wall, Math.Max(0, 1 - busy / wall), mb / wall);
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
        var inv = CultureInfo.InvariantCulture;
        var o = new Opts(a[2], int.Parse(a[3], inv), int.Parse(a[4], inv), 0, 0, [], false, null);
        var system = ActorSystem.Create(ClusterRoles.SystemName, NodeConfig([ClusterRoles.Data]));
        var parts = a[1].Split(':');
        Akka.Cluster.Cluster.Get(system).Join(new Address("akka.tcp", ClusterRoles.SystemName, parts[0], int.Parse(parts[1], inv)));
        var proxy = RoleStarter.StartCoordinatorProxy(system);
        RoleStarter.StartDataNode(system, DataRole(o.Data(int.Parse(a[5], inv)), "child"), proxy);
        system.WhenTerminated.Wait();
        return 0;
    }

    /// <summary>Batch buffers a pipeline allocates while its consumer is slow, and the bound it promises.</summary>
    private static (long Allocated, long Bound) SlowConsumer(Opts o, LiteVae.Data.Shards.ShardIndex index)
    {
        var data = o.Data(4);
        var pipeline = DataPipeline.Start(data.CreatePipelineOptions(index, DataUse.Train));
        var cts = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        var asking = Task.Run(async () =>
        {
            try
            {
                for (long start = 0; ; start += o.Batch) await pipeline.RequestAsync(start, o.Batch, cts.Token);
            }
            catch (OperationCanceledException) { }
        });
        try
        {
            while (!cts.IsCancellationRequested)
            {
                Thread.Sleep(250);
                if (pipeline.Batches.TryRead(out var b)) b.Dispose();
            }
        }
        finally
        {
            asking.Wait();
            pipeline.DisposeAsync().AsTask().Wait();
        }
        return (pipeline.Pool.Allocated, 2L * data.PrefetchBatches + 2);
    }

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

        public IReadOnlyDictionary<string, double>? TrainStep(Batch batch, bool readLosses)
        {
            var r = inner.TrainStep(batch, readLosses);
            first.TrySetResult(DateTime.UtcNow);
            return r;
        }

        public ICheckpointSnapshot Snapshot(string dataPosition) => inner.Snapshot(dataPosition);
        public void Dispose() => inner.Dispose();
    }
}
