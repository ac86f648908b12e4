using System.Diagnostics;
using System.Globalization;
using System.Text;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Telemetry;
using LiteVae.Model;
using LiteVae.Model.Configs;
using Microsoft.Extensions.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// Training throughput with tracing on vs off. The loop makes exactly the telemetry calls the trainer
/// makes (per step: step time, data wait, images; per log window: one span under the run span, the
/// window gauges and loss gauges; a checkpoint-snapshot span), around a real TorchSharp training step.
/// "off" is production without an endpoint: the calls stay, nothing listens. "on" exports everything
/// over OTLP/HTTP to a loopback sink with a 1 s metric interval (harsher than the 60 s default).
/// Blocks alternate off/on so drift (thermal, other load) hits both; the spread between off blocks is
/// the noise floor the on/off difference must be read against.
/// Usage: litevae-bench tracing-overhead [--device cpu|cuda] [--preset S|B|M|L] [--batch 4] [--size 64] [--steps 40] [--blocks 4]
/// [--log-every 10] [--warmup 5] [--part all|overhead|metrics] [--shards LIST] [--metric-steps 30] [--slow-ms 400] [--out FILE]
/// </summary>
internal sealed class TracingOverheadBench : IBenchmark
{
    public string Name => "tracing-overhead";

    public string Description => "training throughput with tracing (OTLP export) on vs off; must differ by < 2%";

    private sealed record Opts(string Device, string Preset, int Batch, int Size, int Steps, int Blocks, int LogEvery, int Warmup, string? Out,
        string Part, string[] Shards, int MetricSteps, int SlowMs)
    {
        public static Opts Parse(string[] a)
        {
            string? Get(string k) { int i = Array.IndexOf(a, k); return i >= 0 && i + 1 < a.Length ? a[i + 1] : null; }
            bool gpu = cuda.is_available();
            return new Opts(Get("--device") ?? (gpu ? "cuda" : "cpu"), Get("--preset") ?? (gpu ? "B" : "S"), int.Parse(Get("--batch") ?? (gpu ? "16" : "4")),
                int.Parse(Get("--size") ?? (gpu ? "256" : "64")), int.Parse(Get("--steps") ?? (gpu ? "200" : "40")),
                int.Parse(Get("--blocks") ?? "4"), int.Parse(Get("--log-every") ?? "10"), int.Parse(Get("--warmup") ?? "5"), Get("--out"),
                Get("--part") ?? "all", (Get("--shards") ?? "samples/shards/train-{000000..000003}.tar").Split(','),
                int.Parse(Get("--metric-steps") ?? "30"), int.Parse(Get("--slow-ms") ?? "400"));
        }
    }

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
        string outPath = o.Out ?? Path.Combine("bench", "results", $"tracing-overhead-{DateTime.UtcNow:yyyy-MM-dd}-{o.Device}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, report.ToString());
        Console.WriteLine($"wrote {outPath}");
        return code;
    }

    private int Overhead(Opts o, StringBuilder report)
    {
        var device = new Device(o.Device);
        using var step = new AutoencoderTrainingStep(device, o.Preset, o.Batch, o.Size);
        using var sink = new OtlpSink();
        var telemetry = LiteVaeTelemetry.Default;
        Console.WriteLine($"tracing-overhead: {step.Describe}, {o.Steps} steps per block, {o.Blocks} blocks each of off/on, log every {o.LogEvery}");

        for (int i = 0; i < o.Warmup; i++) step.Step();
        step.Sync();

        var off = new List<double>();
        var on = new List<double>();
        long stepNo = 0;
        for (int b = 0; b < o.Blocks; b++)
        {
            foreach (bool tracing in new[] { false, true })
            {
                OtelSession? session = tracing ? OtelSession.Start("bench", Settings(sink.Endpoint), telemetry) : null;
                try
                {
                    double ips = Block(o, step, telemetry, ref stepNo, $"bench-{b}-{(tracing ? "on" : "off")}");
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
        string shared = device.type == DeviceType.CUDA ? "" : " (CPU machine shared with other builds while measured)";
        report.AppendLine(ci, $"Machine: {Environment.MachineName}, {Environment.ProcessorCount} cores, device {device}{shared}.");
        report.AppendLine(ci, $"Step: {step.Describe}. {o.Blocks} blocks each of tracing off and on (alternating), {o.Steps} steps per block, log window every {o.LogEvery} steps (one span + gauges), a snapshot span per block.");
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

    /// <summary>One timed block: steps with the trainer's telemetry calls; returns images per second.</summary>
    private static double Block(Opts o, AutoencoderTrainingStep step, LiteVaeTelemetry telemetry, ref long stepNo, string runId)
    {
        using var run = telemetry.Train.StartActivity("bench run");
        var tracer = new TrainingTracer(telemetry, runId, "bench", o.Device, TraceContext.Inject(run));
        step.Sync();
        var block = Stopwatch.StartNew();
        var window = Stopwatch.StartNew();
        var windowStart = DateTime.UtcNow;
        long firstInWindow = stepNo + 1;
        double windowWait = 0;
        for (int i = 0; i < o.Steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var batch = step.NextBatch();                    // the trainer's "take a batch" (data wait)
            double wait = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            long t1 = Stopwatch.GetTimestamp();
            step.Step(batch);
            tracer.Step(Stopwatch.GetElapsedTime(t1).TotalSeconds, wait, o.Batch);
            windowWait += wait;
            stepNo++;
            if ((i + 1) % o.LogEvery == 0)
            {
                double loss = step.ReadLoss();              // the one device sync of the window
                tracer.Window(firstInWindow, stepNo, windowStart, window.Elapsed.TotalSeconds, o.LogEvery * o.Batch, windowWait,
                    [new("d", loss)]);
                window.Restart();
                windowStart = DateTime.UtcNow;
                firstInWindow = stepNo + 1;
                windowWait = 0;
            }
        }
        using (tracer.StartSnapshot(stepNo, "bench")) { }
        step.Sync();
        return o.Steps * o.Batch / block.Elapsed.TotalSeconds;
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
    /// A real LiteVAE training step for the comparison: encode (Haar DWT + feature extractors), sample the
    /// posterior, decode, L1 + KL loss, backward, Adam, on a uint8 batch uploaded and scaled per step as
    /// the trainer does. LPIPS and the GAN terms are left out: the telemetry cost does not depend on
    /// what the step computes, only on how long it takes, and a shorter step makes the relative
    /// overhead measured here an upper bound.
    /// </summary>
    private sealed class AutoencoderTrainingStep : IDisposable
    {
        private readonly Device _device;
        private readonly LiteAutoencoder _model;
        private readonly optim.Optimizer _optimizer;
        private readonly byte[][] _batches;
        private readonly long[] _shape;
        private Tensor? _lastLoss;
        private int _next;

        public AutoencoderTrainingStep(Device device, string preset, int batch, int size)
        {
            _device = device;
            manual_seed(1);
            _model = new LiteAutoencoder(AutoencoderConfig.Preset(preset));
            _model.to(device);
            _model.train();
            _optimizer = optim.Adam(_model.parameters(), 1e-4, 0.5, 0.9);
            _shape = [batch, 3, size, size];
            var rng = new Random(1);
            _batches = Enumerable.Range(0, 4).Select(_ => { var b = new byte[batch * 3 * size * size]; rng.NextBytes(b); return b; }).ToArray();
            Describe = $"LiteVAE-{preset} update (encode, sample, decode, L1 + KL, backward, Adam), batch {batch} of {size}², fp32 on {device}";
        }

        public string Describe { get; }

        public byte[] NextBatch() => _batches[_next++ % _batches.Length];

        public void Step() => Step(NextBatch());

        public void Step(byte[] pixels)
        {
            using var scope = NewDisposeScope();
            var x = tensor(pixels, _shape).to(_device).to_type(ScalarType.Float32).div_(127.5).sub_(1);
            _optimizer.zero_grad();
            var (reconstruction, posterior) = _model.Reconstruct(x);
            using (posterior)
            {
                var loss = (reconstruction - x).abs().mean() + 1e-6 * posterior.Kl().mean();
                loss.backward();
                _optimizer.step();
                _lastLoss?.Dispose();
                _lastLoss = loss.detach().MoveToOuterDisposeScope();
            }
        }

        public double ReadLoss() => _lastLoss?.item<float>() ?? double.NaN;

        public void Sync()
        {
            if (_device.type == DeviceType.CUDA) cuda.synchronize();
        }

        public void Dispose()
        {
            _lastLoss?.Dispose();
            _optimizer.Dispose();
            _model.Dispose();
        }
    }
}
