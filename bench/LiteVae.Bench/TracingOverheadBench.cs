using LiteVae.Actors;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Telemetry;
using LiteVae.Actors.Data;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Model.Training;
using Microsoft.Extensions.Configuration;

namespace LiteVae.Bench;

/// <summary>
/// Training throughput with tracing on vs off, on the real trainer: the training engine a node builds
/// (the Host's NodeServicesFactory → LiteVaeTrainer from an experiment config: G/D steps, LPIPS, precision,
/// channels-last as configured), driven the way the DeviceTrainer drives it, with the DeviceTrainer's
/// telemetry calls (per step: step time, data wait, images; per log window: the loss read, one span linked
/// to the run's marker, the window and loss gauges; per block: a checkpoint snapshot through the engine with its span).
/// "off" is production without an endpoint: the calls stay, nothing listens. "on" exports everything over
/// OTLP/HTTP to a loopback sink with a 1 s metric interval (harsher than the 60 s default).
/// Blocks alternate off/on so drift (thermal, other load) hits both; the spread between off blocks is
/// the noise floor the on/off difference must be read against.
/// Usage: litevae-bench tracing-overhead [--config configs/quickstart.conf] [--set key=value]... [--weights DIR]
/// [--steps 40] [--blocks 4] [--warmup 5] [--part all|overhead|metrics] [--shards LIST] [--metric-steps 30] [--slow-ms 400] [--out FILE]
/// GPU: scripts/gpu/run.sh litevae-bench tracing-overhead --part overhead --config configs/phase-a.conf --set trainer.device=cuda
/// </summary>
internal sealed class TracingOverheadBench : IBenchmark
{
    public string Name => "tracing-overhead";

    public string Usage => """
        usage: litevae-bench tracing-overhead [--config configs/quickstart.conf] [--set key=value]... [--weights DIR]
               [--steps 40] [--blocks 4] [--warmup 5] [--part all|overhead|metrics] [--shards LIST] [--metric-steps 30] [--slow-ms 400] [--out FILE]
        """;

    public string Description => "training throughput of the real trainer with tracing (OTLP export) on vs off; must differ by < 2%";

    private sealed record Opts(string Config, string[] Sets, string? Weights, int Steps, int Blocks, int Warmup, string? Out,
        string Part, string[] Shards, int MetricSteps, int SlowMs)
    {
        public static Opts Parse(string[] a)
        {
            string? Get(string k) { int i = Array.IndexOf(a, k); return i >= 0 && i + 1 < a.Length ? a[i + 1] : null; }
            var sets = a.Select((v, i) => (v, i)).Where(x => x.v == "--set" && x.i + 1 < a.Length).Select(x => a[x.i + 1]).ToArray();
            return new Opts(Get("--config") ?? "configs/quickstart.conf", sets, Get("--weights"),
                int.Parse(Get("--steps") ?? "40"), int.Parse(Get("--blocks") ?? "4"), int.Parse(Get("--warmup") ?? "5"), Get("--out"),
                Get("--part") ?? "all", (Get("--shards") ?? "samples/shards/train-{000000..000003}.tar").Split(','),
                int.Parse(Get("--metric-steps") ?? "30"), int.Parse(Get("--slow-ms") ?? "400"));
        }
    }

    private string _device = "cpu";   // where the overhead part trained (names the result file)

    public int Run(string[] args)
    {
        var o = Opts.Parse(args);
        if (o.Part is not ("all" or "overhead" or "metrics"))
        {
            Console.Error.WriteLine($"tracing-overhead: --part {o.Part}: use all, overhead or metrics.");
            return 2;
        }
        var report = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        report.AppendLine(ci, $"# tracing-overhead benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        report.AppendLine();
        int code = 0;
        if (o.Part is "all" or "overhead")
            code = Overhead(o, report);
        if (code == 0 && o.Part is "all" or "metrics")
        {
            Console.WriteLine($"metrics agreement: data pipeline over {string.Join(", ", o.Shards)}, {o.MetricSteps} steps per regime");
            var regimes = MetricsAgreement.Run(o.Shards, o.MetricSteps, 8, 64, fastMs: 0, slowMs: o.SlowMs);
            MetricsAgreement.Report(report, regimes);
            var problems = MetricsAgreement.Problems(regimes);
            report.AppendLine();
            report.AppendLine(problems.Count == 0 ? "Agreement: PASS (same step count and wait sum, queue means within 0.5)."
                : "Agreement: FAIL: " + string.Join("; ", problems));
            if (problems.Count > 0) code = 1;
        }
        Console.Write(report.ToString());
        string outPath = o.Out ?? Path.Combine("bench", "results", $"tracing-overhead-{DateTime.UtcNow:yyyy-MM-dd}-{_device.Replace(":", "")}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, report.ToString());
        Console.WriteLine($"wrote {outPath}");
        return code;
    }

    private int Overhead(Opts o, StringBuilder report)
    {
        using var engine = RealEngine.Create(o);
        _device = engine.Device;
        using var sink = new OtlpSink();
        var telemetry = LiteVaeTelemetry.Default;
        Console.WriteLine($"tracing-overhead: {engine.Describe}, {o.Steps} steps per block, {o.Blocks} blocks each of off/on, log every {engine.LogEvery}");

        for (int i = 0; i < o.Warmup; i++) engine.Step(i == o.Warmup - 1);   // the last one reads losses: a sync

        var off = new List<double>();
        var on = new List<double>();
        for (int b = 0; b < o.Blocks; b++)
        {
            foreach (bool tracing in new[] { false, true })
            {
                OtelSession? session = tracing ? OtelSession.Start("bench", Settings(sink.Endpoint), telemetry) : null;
                try
                {
                    double ips = Block(o, engine, telemetry, $"bench-{b}-{(tracing ? "on" : "off")}");
                    (tracing ? on : off).Add(ips);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  block {b} tracing {(tracing ? "on " : "off")}: {ips:F2} img/s"));
                }
                finally
                {
                    session?.Dispose();   // flushes: the sink must have received what was traced
                }
            }
        }

        double offMedian = Median(off), onMedian = Median(on);
        double diff = (offMedian - onMedian) / offMedian;
        double noise = (off.Max() - off.Min()) / offMedian;
        bool pass = Math.Abs(diff) < 0.02;
        var ci = CultureInfo.InvariantCulture;
        string shared = engine.Device.StartsWith("cuda", StringComparison.Ordinal) ? "" : " (CPU machine shared with other builds while measured)";
        report.AppendLine(ci, $"Machine: {Environment.MachineName}, {Environment.ProcessorCount} cores, device {engine.Device}{shared}.");
        report.AppendLine(ci, $"Trainer: {engine.Describe}. {o.Blocks} blocks each of tracing off and on (alternating), {o.Steps} steps per block, " +
                              $"log window every {engine.LogEvery} steps (loss read + one span + gauges), one checkpoint snapshot (span) per block.");
        report.AppendLine("On: OTLP/HTTP (protobuf) export of traces and metrics to a loopback receiver, metric interval 1 s. " +
                          "Off: no endpoint, so no provider (the instrumentation calls still run).");
        report.AppendLine();
        report.AppendLine("| tracing | img/s per block | median img/s |");
        report.AppendLine("|---|---|---|");
        report.AppendLine(ci, $"| off | {string.Join(", ", off.Select(v => v.ToString("F2", ci)))} | {offMedian:F2} |");
        report.AppendLine(ci, $"| on | {string.Join(", ", on.Select(v => v.ToString("F2", ci)))} | {onMedian:F2} |");
        report.AppendLine();
        report.AppendLine(ci, $"Throughput cost of tracing: {diff * 100:F2}% (limit 2%: {(pass ? "PASS" : "FAIL")}); spread between off blocks (noise floor): {noise * 100:F2}%.");
        report.AppendLine(ci, $"Exported while on: {sink.TraceRequests} trace requests, {sink.MetricRequests} metric requests, {sink.Bytes:N0} bytes.");
        if (sink.TraceRequests == 0 || sink.MetricRequests == 0)
        {
            Console.Error.WriteLine("tracing-overhead: the 'on' blocks exported nothing; the comparison would be meaningless.");
            return 1;
        }
        return 0;
    }

    /// <summary>One timed block: the DeviceTrainer's loop and telemetry calls; returns images per second.</summary>
    private static double Block(Opts o, RealEngine engine, LiteVaeTelemetry telemetry, string runId)
    {
        using var run = telemetry.Train.StartActivity("bench run");
        var tracer = new TrainingTracer(telemetry, runId, "bench", engine.Device, TraceContext.Inject(run));
        var block = Stopwatch.StartNew();
        var window = Stopwatch.StartNew();
        var windowStart = DateTime.UtcNow;
        long firstInWindow = engine.StepCount + 1;
        double windowWait = 0;
        int images = 0;
        for (int i = 0; i < o.Steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var batch = engine.NextBatch();                  // the trainer's "take a batch" (data wait)
            double wait = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            bool logNow = (engine.StepCount + 1) % engine.LogEvery == 0;
            long t1 = Stopwatch.GetTimestamp();
            var losses = engine.Step(batch, logNow);         // reading the losses is the window's device sync
            tracer.Step(Stopwatch.GetElapsedTime(t1).TotalSeconds, wait, batch.Count);
            windowWait += wait;
            images += batch.Count;
            if (losses is not null)
            {
                tracer.Window(firstInWindow, engine.StepCount, windowStart, window.Elapsed.TotalSeconds, engine.LogEvery * batch.Count,
                    windowWait, losses);
                window.Restart();
                windowStart = DateTime.UtcNow;
                firstInWindow = engine.StepCount + 1;
                windowWait = 0;
            }
        }
        engine.Step(engine.NextBatch(), readLosses: true);   // ends the block with a sync (not counted)
        double seconds = block.Elapsed.TotalSeconds;
        using (tracer.StartSnapshot(engine.StepCount, "bench"))
            engine.Snapshot();
        return images / seconds;
    }

    private static OtelSettings Settings(string endpoint) =>
        OtelSettings.From(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [OtelSettings.Endpoint] = endpoint,
            [OtelSettings.Protocol] = "http/protobuf",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "1000",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "1000",
        }).Build());

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>
    /// The node's training engine (what the DeviceTrainer steps), built from an experiment config exactly as
    /// a trainer node builds it, fed uint8 batches of the config's batch size and resolution from memory (the
    /// data path is not what is measured here; its metrics are checked by the agreement part).
    /// </summary>
    private sealed class RealEngine : IDisposable
    {
        private readonly ITrainingEngine _engine;
        private readonly string _runDir;
        private readonly byte[][] _pixels;
        private readonly int _batch, _size;
        private readonly LiteVae.Data.Pipeline.SampleInfo[] _ids;
        private int _next;

        private RealEngine(ITrainingEngine engine, string runDir, ExperimentConfig c, string describe)
        {
            (_engine, _runDir) = (engine, runDir);
            _batch = c.Data.BatchSize;
            _size = c.Data.Resolution;
            LogEvery = c.Run.LogEvery;
            _ids = Enumerable.Range(0, _batch).Select(i => new LiteVae.Data.Pipeline.SampleInfo(i, 0, 0, i, $"k{i}")).ToArray();
            var rng = new Random(1);
            _pixels = Enumerable.Range(0, 4).Select(_ => { var b = new byte[_batch * 3 * _size * _size]; rng.NextBytes(b); return b; }).ToArray();
            Describe = describe;
        }

        public static RealEngine Create(Opts o)
        {
            // The experiment as one text (includes resolved, --set applied), as the coordinator hands it out.
            var file = HoconFile.Load(o.Config, o.Sets);
            var c = ExperimentConfigBinder.Bind(file);
            string text = file.Render();
            string runDir = Directory.CreateTempSubdirectory("litevae-tracing-bench-").FullName;
            var node = NodeOptions.Bind(HoconFile.Load(Path.Combine(AppContext.BaseDirectory, "hocon", "single-node.conf")));
            var engine = NodeServicesFactory.Create(node, null, null, [], new NodeExtras(o.Weights, 0)).Engine();
            engine.Initialize(text, runDir, null);
            string describe = $"{o.Config}{(o.Sets.Length > 0 ? " with " + string.Join(", ", o.Sets) : "")}: LiteVaeTrainer, " +
                              $"batch {c.Data.BatchSize} of {c.Data.Resolution}², {c.Trainer.Precision.Name()}, discriminator {c.Discriminator.Type}, " +
                              $"perceptual {c.Perceptual}, on {engine.Device}";
            return new RealEngine(engine, runDir, c, describe);
        }

        public string Describe { get; }
        public string Device => _engine.Device;
        public int LogEvery { get; }
        public long StepCount => _engine.Step;

        /// <summary>A pooled batch, as the data pipeline delivers them (the trainer disposes it after the step).</summary>
        public LiteVae.Data.Pipeline.Batch NextBatch()
        {
            long start = (long)_next * _batch;
            return new LiteVae.Data.Pipeline.Batch(start, _batch, _pixels[_next++ % _pixels.Length], null, _size, _size, _ids, []);
        }

        public void Step(bool readLosses)
        {
            using var b = NextBatch();
            _engine.TrainStep(b, readLosses);
        }

        public IReadOnlyDictionary<string, double>? Step(LiteVae.Data.Pipeline.Batch batch, bool readLosses)
        {
            using (batch)
                return _engine.TrainStep(batch, readLosses);
        }

        public void Snapshot()
        {
            using var snapshot = _engine.Snapshot("{}");
        }

        public void Dispose()
        {
            _engine.Dispose();
            try { Directory.Delete(_runDir, true); } catch (IOException) { }
        }
    }
}
