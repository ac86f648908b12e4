using System.Diagnostics;
using System.Globalization;
using System.Text;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// Evaluation throughput: the loop of `litevae eval` (evaluation data pipeline → posterior-mode
/// reconstruction → PSNR, SSIM, MS-SSIM, LPIPS, FID Inception features) in img/s, for LiteVAE-B (or the
/// quickstart-size model) on the bundled held-out photos, repeated to make a long enough run. Rows:
/// end to end (data pipeline included), the same with the decoded images held in memory (no data
/// cost), the reconstruction alone and the metrics alone; plus the once-per-run Fréchet distance.
/// Model and metric networks use real weights when given (--checkpoint, --weights); otherwise random
/// weights, labelled TIMING ONLY (speed is the same, the metric values mean nothing).
/// </summary>
internal sealed class EvalJobBench : IBenchmark
{
    public string Name => "eval-job";

    public string Description => "eval img/s of LiteVAE-B at 256² with every metric (end to end and in memory)";

    private sealed record Options(string Device, string Preset, int Resolution, int Batch, int Repeat, string Data, string? Weights,
        string? Checkpoint, string Precision, string Lpips, bool Rfid, int Workers, int Threads, string Out);

    private sealed record Row(string What, long Images, double Seconds, double ImagesPerSecond, string Detail);

    public int Run(string[] args)
    {
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
            return 2;
        }
        if (o.Threads > 0) set_num_threads(o.Threads);
        var device = o.Device == "auto" ? (cuda.is_available() ? CUDA : CPU) : new Device(o.Device);
        var dtype = o.Precision == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;

        var config = o.Preset == "quickstart"
            // The model section of configs/quickstart.conf (a smoke-sized LiteVAE, f8c4).
            ? new AutoencoderConfig(4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(16, 4, 3, [1, 2, 2, 2], 1))
            : AutoencoderConfig.Preset(o.Preset, 12);
        manual_seed(0);
        using var model = new LiteAutoencoder(config);
        string modelLabel = "RANDOM weights: TIMING ONLY";
        if (o.Checkpoint is { } ckpt)
        {
            var tensors = Safetensors.Load(ckpt, k => k.StartsWith("encoder.", StringComparison.Ordinal) || k.StartsWith("decoder.", StringComparison.Ordinal));
            StateDict.Load(model, tensors, ckpt);
            foreach (var t in tensors.Values) t.Dispose();
            modelLabel = $"weights {Path.GetFileName(ckpt)}";
        }
        model.eval();
        if (dtype != ScalarType.Float32) model.to(dtype);
        model.to(device);
        long parameters = model.parameters().Sum(p => p.numel());

        var files = new WeightFiles(o.Weights ?? WeightFiles.DefaultFolder(Environment.GetEnvironmentVariable("LITEVAE_WEIGHTS"),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)).Folder, o.Weights is null ? "default" : "--weights");
        var (lpips, lpipsLabel) = o.Lpips == "none"
            ? (Availability<Lpips>.Unavailable("off (--lpips none)"), "off")
            : LoadOrRandom(PretrainedNetworks.LoadLpips(files, o.Lpips == "vgg" ? LpipsNet.Vgg : LpipsNet.Alex, device),
                () => new Lpips(o.Lpips == "vgg" ? LpipsNet.Vgg : LpipsNet.Alex), device);
        var (inception, inceptionLabel) = !o.Rfid
            ? (Availability<FidInceptionV3>.Unavailable("off (--no-rfid)"), "off")
            : LoadOrRandom(PretrainedNetworks.LoadFidInception(files, device), () => new FidInceptionV3(), device);

        string deviceName = device.type == DeviceType.CUDA ? $"CUDA device {Math.Max(0, device.index)}" : $"CPU ({Environment.ProcessorCount} logical cores, {get_num_threads()} torch threads)";
        Console.WriteLine($"eval-job on {deviceName}: LiteVAE-{o.Preset} ({parameters / 1e6:0.00} M parameters, {o.Precision}), {o.Resolution}², batch {o.Batch}, " +
                          $"{o.Data} x {o.Repeat}; model: {modelLabel}; LPIPS {o.Lpips}: {lpipsLabel}; FID Inception: {inceptionLabel}");

        var reconstructor = new AutoencoderReconstructor(model, device);
        var data = new DataConfig
        {
            Source = Enumerable.Repeat(o.Data, o.Repeat).ToList(),
            Resolution = o.Resolution,
            BatchSize = o.Batch,
            DecodeWorkers = o.Workers,
        };
        var rows = new List<Row>();

        // Warm-up (cuDNN algorithm choice, allocator): one batch through everything, not timed.
        var batches = Preload(data with { Source = [o.Data] }, 1);
        using (var warm = new MetricSet(lpips, inception))
            new ReconstructionEvaluator(reconstructor, warm, 0, 0).Add(batches[0].Pixels, batches[0].Count, o.Resolution, o.Resolution, batches[0].Sources);
        Sync(device);

        // 1. End to end: the evaluation data pipeline feeding the evaluator, as `litevae eval` runs it.
        double fidSeconds;
        FrechetResult? fid;
        {
            using var metrics = new MetricSet(lpips, inception);
            var evaluator = new ReconstructionEvaluator(reconstructor, metrics, 8, 8);
            var index = data.LoadIndex(_ => { });
            var pipeline = DataPipeline.Start(data.CreatePipelineOptions(index, DataUse.Eval));
            var clock = Stopwatch.StartNew();
            double wait = 0;
            try
            {
                var w = Stopwatch.StartNew();
                foreach (var batch in pipeline.ReadSpansAsync(0, data.BatchSize, index.TotalSamples).ToBlockingEnumerable())
                {
                    wait += w.Elapsed.TotalSeconds;
                    using (batch)
                        evaluator.Add(batch.Pixels.Span, batch.Count, batch.Height, batch.Width,
                            batch.Samples.Select(s => new ImageSource(index.Shards[s.Shard].Name, s.Key)).ToList());
                    w.Restart();
                }
            }
            finally
            {
                pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            Sync(device);
            double seconds = clock.Elapsed.TotalSeconds;
            rows.Add(new Row("end to end (data pipeline + reconstruction + all metrics)", evaluator.Count, seconds, evaluator.Count / seconds,
                string.Create(CultureInfo.InvariantCulture, $"data wait {wait:F2} s ({100 * wait / seconds:F0}%), {o.Workers} decode workers")));
            var fidClock = Stopwatch.StartNew();
            var summary = metrics.Summarize(computeFid: true);
            fidSeconds = fidClock.Elapsed.TotalSeconds;
            fid = summary.Fid;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  PSNR {summary[MetricSet.PsnrName].Value:F2} dB over {evaluator.Count} images{(o.Checkpoint is null ? " (meaningless: random model weights)" : "")}"));
        }

        // 2. The same images already decoded, in memory: the evaluator's own speed.
        var memory = Preload(data, o.Repeat);
        long images = memory.Sum(b => (long)b.Count);
        rows.Add(Time("in memory (reconstruction + all metrics)", images, device, () =>
        {
            using var metrics = new MetricSet(lpips, inception);
            var evaluator = new ReconstructionEvaluator(reconstructor, metrics, 8, 8);
            foreach (var b in memory) evaluator.Add(b.Pixels, b.Count, o.Resolution, o.Resolution, b.Sources);
        }));

        // 3. The parts: reconstruction alone, metrics alone (against a fixed noisy copy).
        rows.Add(Time("reconstruction only (encode, mode, decode, to 8 bits)", images, device, () =>
        {
            foreach (var b in memory)
            {
                using var scope = NewDisposeScope();
                reconstructor.Reconstruct(tensor(b.Pixels, [b.Count, 3, o.Resolution, o.Resolution]).to(device));
            }
        }));
        rows.Add(Time("metrics only (PSNR, SSIM, MS-SSIM, LPIPS, FID features)", images, device, () =>
        {
            using var metrics = new MetricSet(lpips, inception);
            foreach (var b in memory)
            {
                using var scope = NewDisposeScope();
                var x = tensor(b.Pixels, [b.Count, 3, o.Resolution, o.Resolution]).to(device);
                metrics.Add(x, (x.to(float32) + 8).clamp(0, 255).to(ScalarType.Byte));
            }
        }));

        foreach (var r in rows)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {r.What,-58} {r.ImagesPerSecond,9:F1} img/s  ({r.Images} images, {r.Seconds:F2} s) {r.Detail}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  Fréchet distance (2048-d, float64, once per evaluation): {fidSeconds:F2} s{(fid is null ? " (not computed)" : "")}"));

        Directory.CreateDirectory(o.Out);
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-dd-HHmmss", CultureInfo.InvariantCulture);
        string md = Path.Combine(o.Out, $"eval-job-{stamp}.md");
        File.WriteAllText(md, Markdown(o, args, deviceName, parameters, modelLabel, lpipsLabel, inceptionLabel, rows, fidSeconds, fid is not null));
        Console.WriteLine($"wrote {md}");
        lpips.Value?.Dispose();
        inception.Value?.Dispose();
        return 0;
    }

    private sealed record MemoryBatch(byte[] Pixels, int Count, IReadOnlyList<ImageSource> Sources);

    /// <summary>The evaluation images decoded once into memory, batch by batch.</summary>
    private static List<MemoryBatch> Preload(DataConfig data, int repeat)
    {
        var list = new List<MemoryBatch>();
        var repeated = data with { Source = Enumerable.Repeat(data.Source[0], repeat).ToList() };
        var index = repeated.LoadIndex(_ => { });
        var pipeline = DataPipeline.Start(repeated.CreatePipelineOptions(index, DataUse.Eval));
        try
        {
            foreach (var b in pipeline.ReadSpansAsync(0, data.BatchSize, index.TotalSamples).ToBlockingEnumerable())
                using (b)
                    list.Add(new MemoryBatch(b.Pixels.ToArray(), b.Count, b.Samples.Select(s => new ImageSource(index.Shards[s.Shard].Name, s.Key)).ToList()));
        }
        finally
        {
            pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        if (list.Count == 0) throw new InvalidDataException($"{data.Source[0]}: no images.");
        return list;
    }

    private static Row Time(string what, long images, Device device, Action body)
    {
        using var _ = no_grad();
        Sync(device);
        var clock = Stopwatch.StartNew();
        body();
        Sync(device);
        double s = clock.Elapsed.TotalSeconds;
        return new Row(what, images, s, images / s, "");
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    private static (Availability<T>, string) LoadOrRandom<T>(Availability<T> loaded, Func<T> random, Device device) where T : nn.Module
    {
        if (loaded.IsAvailable) return (loaded, "real weights");
        Console.WriteLine($"  note: {loaded.Reason}");
        var r = random();
        r.to(device);
        return (Availability<T>.Available(r), "RANDOM weights: TIMING ONLY");
    }

    private static string Markdown(Options o, string[] args, string deviceName, long parameters, string modelLabel, string lpipsLabel,
        string inceptionLabel, List<Row> rows, double fidSeconds, bool fidComputed)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"# eval-job, {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", inv)} UTC");
        sb.AppendLine();
        sb.AppendLine($"- device: {deviceName}");
        sb.AppendLine($"- command: `litevae-bench eval-job {string.Join(' ', args)}`");
        sb.AppendLine(string.Create(inv, $"- model: LiteVAE-{o.Preset} ({parameters / 1e6:0.00} M parameters), {o.Precision}, {modelLabel}; posterior mode, 8-bit reconstructions"));
        sb.AppendLine($"- metrics: PSNR, SSIM{(o.Resolution >= MsSsim.MinSide ? ", MS-SSIM" : "")} (float64); LPIPS {o.Lpips} ({lpipsLabel}); FID Inception features of both images ({inceptionLabel})");
        sb.AppendLine($"- data: {o.Data} read {o.Repeat} time(s), eval transform to {o.Resolution}² (resize short side, centre crop), batch {o.Batch}, {o.Workers} decode workers");
        sb.AppendLine();
        sb.AppendLine("| what | images | seconds | img/s | notes |");
        sb.AppendLine("|---|---:|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Format(inv, "| {0} | {1} | {2:F2} | {3:F1} | {4} |", r.What, r.Images, r.Seconds, r.ImagesPerSecond, r.Detail));
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"Fréchet distance on the accumulated 2048-d statistics (once per evaluation): {(fidComputed ? $"{fidSeconds:F2} s" : "not computed")}."));
        sb.AppendLine();
        sb.AppendLine("Rows with RANDOM weights measure speed only; the metric values they produce mean nothing.");
        return sb.ToString();
    }

    public string Usage =>
        "usage: litevae-bench eval-job [--device auto|cpu|cuda[:N]] [--preset b|s|m|l|quickstart] [--resolution 256] [--batch 32] [--repeat 32]\n" +
        "       [--data samples/shards/eval-000000.tar] [--weights DIR] [--checkpoint model.safetensors] [--precision fp32|bf16]\n" +
        "       [--lpips vgg|alex|none] [--no-rfid] [--workers N] [--threads N] [--out bench/results]\n" +
        "Defaults: on CUDA LiteVAE-B at 256², batch 32, the bundled held-out shard 32 times (320 images); on a CPU the quickstart-size\n" +
        "model at 64², batch 10, the shard once (10 images).";

    private static Options Parse(string[] args)
    {
        bool gpu = args.Contains("--device") ? !args.SkipWhile(a => a != "--device").Skip(1).FirstOrDefault("auto").StartsWith("cpu", StringComparison.Ordinal) && cuda.is_available() : cuda.is_available();
        var o = new Options("auto", gpu ? "b" : "quickstart", gpu ? 256 : 64, gpu ? 32 : 10, gpu ? 32 : 1,
            Path.Combine("samples", "shards", "eval-000000.tar"), null, null, "fp32", "vgg", true, Math.Clamp(Environment.ProcessorCount, 1, 8), 0,
            Path.Combine("bench", "results"));
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Positive(string v) => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"'{v}' must be a positive integer.");
            string Choice(string v, params string[] allowed) => allowed.Contains(v) ? v : throw new ArgumentException($"'{v}': choose from {string.Join(", ", allowed)}.");
            o = args[i] switch
            {
                "--device" => o with { Device = Next() },
                "--preset" => o with { Preset = Choice(Next().ToLowerInvariant(), "s", "b", "m", "l", "quickstart") },
                "--resolution" => o with { Resolution = Positive(Next()) },
                "--batch" => o with { Batch = Positive(Next()) },
                "--repeat" => o with { Repeat = Positive(Next()) },
                "--data" => o with { Data = Next() },
                "--weights" => o with { Weights = Next() },
                "--checkpoint" => o with { Checkpoint = Next() },
                "--precision" => o with { Precision = Choice(Next(), "fp32", "bf16") },
                "--lpips" => o with { Lpips = Choice(Next(), "vgg", "alex", "none") },
                "--no-rfid" => o with { Rfid = false },
                "--workers" => o with { Workers = Positive(Next()) },
                "--threads" => o with { Threads = Positive(Next()) },
                "--out" => o with { Out = Next() },
                _ => throw new ArgumentException($"unknown option '{args[i]}'."),
            };
        }
        if (o.Resolution % 8 != 0) throw new ArgumentException($"--resolution {o.Resolution} must be a multiple of 8.");
        if (!File.Exists(o.Data) && !Directory.Exists(o.Data)) throw new ArgumentException($"--data {o.Data}: not found (run from the repository root, or pass --data).");
        return o;
    }
}
