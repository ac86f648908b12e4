using System.Diagnostics;
using System.Globalization;
using System.Text;
using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// Throughput of the evaluation metrics on pairs of 8-bit images: PSNR + SSIM, MS-SSIM, LPIPS (VGG and
/// AlexNet), FID Inception features (both images of a pair), the 2048-d Fréchet distance, and a full
/// <see cref="MetricSet"/> step. Networks use the real weight files when the weights folder has them;
/// otherwise random weights, clearly labelled TIMING ONLY (their values mean nothing).
/// Usage: litevae-bench eval-metrics [--size 256] [--batch N] [--iters N] [--device cpu|cuda] [--weights DIR] [--out FILE]
/// </summary>
internal sealed class EvalMetricsBench : IBenchmark
{
    public string Name => "eval-metrics";

    public string Description => "img/s of PSNR, SSIM, MS-SSIM, LPIPS and FID Inception at 256² (tiny on CPU, full on GPU)";

    public string Usage => """
        usage: litevae-bench eval-metrics [--size 256] [--batch N] [--iters N] [--warmup N] [--device cpu|cuda] [--weights DIR] [--out FILE]
        """;

    public int Run(string[] args)
    {
        var opts = Options.Parse(args);
        var device = opts.Device;
        Console.WriteLine($"eval-metrics: device {device}, {opts.Size}², batch {opts.Batch}, {opts.Iters} timed iterations");

        var files = opts.WeightsFolder is { } w ? new WeightFiles(w, "--weights")
            : FromDefault(WeightFiles.DefaultFolder(Environment.GetEnvironmentVariable("LITEVAE_WEIGHTS"),
                Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)));
        var (vgg, vggLabel) = LoadOrRandom(PretrainedNetworks.LoadLpips(files, LpipsNet.Vgg), () => new Lpips(LpipsNet.Vgg), device);
        var (alex, alexLabel) = LoadOrRandom(PretrainedNetworks.LoadLpips(files, LpipsNet.Alex), () => new Lpips(LpipsNet.Alex), device);
        var (inception, incLabel) = LoadOrRandom(PretrainedNetworks.LoadFidInception(files), () => new FidInceptionV3(), device);

        var g = new Generator(1234);
        using var originals = randint(0, 256, [opts.Batch, 3, opts.Size, opts.Size], ScalarType.Byte, generator: g).to(device);
        using var noise = randn([opts.Batch, 3, opts.Size, opts.Size], generator: g).mul(12).to(device);
        using var recon = (originals.to(float32) + noise).clamp(0, 255).round().to(ScalarType.Byte);
        using var pa = MetricImages.ToPixels255(originals);
        using var pb = MetricImages.ToPixels255(recon);
        using var sa = MetricImages.ToSigned(pa);
        using var sb = MetricImages.ToSigned(pb);

        var rows = new List<(string What, string Weights, double ImgPerSec, double MsPerBatch)>();
        void Time(string what, string weights, Action step)
        {
            using var _ = no_grad();
            for (int i = 0; i < opts.Warmup; i++) Step(step);
            Sync(device);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < opts.Iters; i++) Step(step);
            Sync(device);
            double ms = sw.Elapsed.TotalMilliseconds / opts.Iters;
            rows.Add((what, weights, opts.Batch / (ms / 1000.0), ms));
            Console.WriteLine($"  {what,-34} {opts.Batch / (ms / 1000.0),10:F1} img/s  {ms,9:F2} ms/batch  {weights}");
        }

        Time("PSNR + SSIM (float64)", "-", () => { Psnr.PerImage(pa, pb); Ssim.PerImage(pa, pb); });
        if (opts.Size >= MsSsim.MinSide) Time("MS-SSIM (float64)", "-", () => MsSsim.PerImage(pa, pb));
        Time("LPIPS VGG", vggLabel, () => vgg.call(sb, sa));
        Time("LPIPS AlexNet", alexLabel, () => alex.call(sb, sa));
        Time("FID Inception features (x2 / pair)", incLabel, () => { inception.call(sa); inception.call(sb); });

        var metricSet = new MetricSet(Availability<Lpips>.Available(vgg), Availability<FidInceptionV3>.Available(inception));
        Time("MetricSet.Add (all, LPIPS VGG)", $"{vggLabel}; {incLabel}", () => metricSet.Add(originals, recon));

        // The Fréchet distance runs once per evaluation, on the accumulated 2048-d statistics; timed on
        // full-rank synthetic statistics (4096 random feature vectors per side), as after a real eval.
        using var s1 = new FeatureStatistics(FidInceptionV3.FeatureDim);
        using var s2 = new FeatureStatistics(FidInceptionV3.FeatureDim);
        using (var f1 = randn([4096, FidInceptionV3.FeatureDim], generator: g).to(device)) s1.Add(f1);
        using (var f2 = randn([4096, FidInceptionV3.FeatureDim], generator: g).to(device).mul(1.1).add(0.05)) s2.Add(f2);
        Sync(device);
        var sw = Stopwatch.StartNew();
        var fid = FrechetDistance.Compute(s1, s2);
        double fidSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"  Fréchet distance 2048-d (float64): {fidSeconds:F2} s (value {fid.Value:G4}, sqrt residual {fid.SqrtResidual:G2})");

        Write(opts, device, rows, fidSeconds, fid);
        metricSet.Dispose();
        vgg.Dispose(); alex.Dispose(); inception.Dispose();
        return 0;
    }

    private static WeightFiles FromDefault((string Folder, string Origin) f) => new(f.Folder, f.Origin);

    private static void Step(Action step)
    {
        using var scope = NewDisposeScope();
        step();
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    private static (T Model, string Label) LoadOrRandom<T>(Availability<T> loaded, Func<T> random, Device device) where T : nn.Module
    {
        if (loaded.Value is { } m) { m.to(device); return (m, "real weights"); }
        Console.WriteLine($"  note: {loaded.Reason}");
        var r = random();
        r.to(device);
        return (r, "RANDOM weights: TIMING ONLY");
    }

    private static void Write(Options o, Device device, List<(string What, string Weights, double ImgPerSec, double MsPerBatch)> rows, double fidSeconds, FrechetResult fid)
    {
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        string path = o.Out ?? Path.Combine("bench", "results", $"eval-metrics-{date}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var sb = new StringBuilder();
        sb.AppendLine($"# eval-metrics, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine();
        string deviceName = device.type == DeviceType.CUDA ? $"CUDA device {device.index}" : $"CPU ({Environment.ProcessorCount} logical cores)";
        sb.AppendLine($"Device: {deviceName}; images {o.Size}x{o.Size}, batch {o.Batch}, {o.Warmup} warm-up + {o.Iters} timed iterations; fp32 networks, float64 PSNR/SSIM/MS-SSIM/FID.");
        sb.AppendLine($"Command: `litevae-bench eval-metrics {string.Join(' ', o.Raw)}`");
        sb.AppendLine();
        sb.AppendLine("| metric | img/s | ms/batch | weights |");
        sb.AppendLine("|---|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.What} | {r.ImgPerSec:F1} | {r.MsPerBatch:F2} | {r.Weights} |");
        sb.AppendLine();
        sb.AppendLine($"Fréchet distance on 2048-d statistics (once per evaluation): {fidSeconds:F2} s, sqrt residual {fid.SqrtResidual:G2}.");
        sb.AppendLine();
        sb.AppendLine("Rows marked RANDOM weights measure speed only; their metric values are meaningless.");
        File.AppendAllText(path, sb.ToString() + Environment.NewLine);
        Console.WriteLine($"results appended to {path}");
    }

    private sealed record Options(int Size, int Batch, int Iters, int Warmup, Device Device, string? WeightsFolder, string? Out, string[] Raw)
    {
        public static Options Parse(string[] args)
        {
            bool gpu = cuda.is_available();
            int size = gpu ? 256 : 64, batch = gpu ? 32 : 2, iters = gpu ? 20 : 2, warmup = gpu ? 3 : 1;
            string? weights = null, output = null;
            Device device = gpu ? CUDA : CPU;
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--size": size = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--batch": batch = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--iters": iters = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--device": device = torch.device(Next()); break;
                    case "--weights": weights = Next(); break;
                    case "--out": output = Next(); break;
                    default: throw new ArgumentException($"unknown option {args[i]} (see the class comment of EvalMetricsBench)");
                }
            }
            if (size < 32 || batch < 1 || iters < 1) throw new ArgumentException("--size must be >= 32, --batch and --iters >= 1.");
            return new Options(size, batch, iters, warmup, device, weights, output, args);
        }
    }
}
