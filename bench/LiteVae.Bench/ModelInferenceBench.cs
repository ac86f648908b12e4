using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LiteVae.Model;
using LiteVae.Model.Configs;
using LiteVae.Model.Decoder;
using LiteVae.Model.Encoder;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// Inference throughput of the LiteVAE-B encoder and the decoder (nz 12): images/s at a resolution and
/// batch, fp32 and bf16 (whole module converted; the DWT stays fp32), NCHW and channels_last, with
/// warm-up and CUDA synchronisation around the timed iterations. Writes
/// bench/results/model-inference-&lt;date&gt;.md and .json next to the PyTorch reference numbers.
/// </summary>
public sealed class ModelInferenceBench : IBenchmark
{
    public string Name => "model-inference";
    public string Description => "encoder-B and decoder img/s (fp32/bf16, NCHW/channels_last)";

    // open-litevae in PyTorch 2.11 eager on one H100, batch 64 at 256 px (shared/platform/README.md).
    private static readonly Dictionary<string, string> Peers = new()
    {
        ["encoder fp32"] = "617", ["encoder bf16"] = "608 (autocast)",
        ["decoder fp32"] = "271", ["decoder bf16"] = "348 (autocast) / 456 (pure bf16)",
    };

    private sealed record Options(string Device, int Resolution, int Batch, int Iters, int Warmup, string[] Precisions, string[] Layouts, string[] Parts, string Out, int Threads = 0);

    private sealed record Row(string Part, string Precision, string Layout, int Batch, int Resolution, int Iters, double Seconds, double ImagesPerSecond, double MsPerBatch);

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
        var device = o.Device switch
        {
            "auto" => cuda.is_available() ? CUDA : CPU,
            "cpu" => CPU,
            _ => new Device(o.Device),
        };
        bool isCuda = device.type == DeviceType.CUDA;
        string deviceName = DeviceName(device);
        Console.WriteLine($"model-inference on {deviceName}: {o.Resolution} px, batch {o.Batch}, {o.Warmup} warm-up + {o.Iters} timed iterations");

        var rows = new List<Row>();
        foreach (var part in o.Parts)
            foreach (var precision in o.Precisions)
                foreach (var layout in o.Layouts)
                {
                    var row = Measure(part, precision, layout, device, o);
                    rows.Add(row);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {row.Part,-8} {row.Precision,-5} {row.Layout,-13} {row.ImagesPerSecond,9:F1} img/s  {row.MsPerBatch,9:F2} ms/batch"));
                }

        Directory.CreateDirectory(o.Out);
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-dd-HHmmss", CultureInfo.InvariantCulture);
        string md = Path.Combine(o.Out, $"model-inference-{stamp}.md"), json = Path.ChangeExtension(md, ".json");
        File.WriteAllText(md, Markdown(rows, o, deviceName, isCuda, args));
        File.WriteAllText(json, JsonSerializer.Serialize(new
        {
            benchmark = Name, date_utc = stamp, device = deviceName, args, torchsharp = typeof(torch).Assembly.GetName().Version?.ToString(),
            cudnn_allow_tf32 = isCuda ? backends.cudnn.allow_tf32 : (bool?)null,
            rows,
        }, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {md} and {json}");
        return 0;
    }

    private static Row Measure(string part, string precision, string layout, Device device, Options o)
    {
        var dtype = precision == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        bool channelsLast = layout == "channels_last";
        int latent = o.Resolution / 8;
        using nn.Module<Tensor, Tensor> module = part == "encoder"
            ? new LiteVaeEncoder(EncoderConfig.B, 24)
            : new LiteVaeDecoder(DecoderConfig.Reference(12));
        module.eval();
        module.to(dtype).to(device);
        if (channelsLast) MemoryLayout.ConvertToChannelsLast(module);

        // The encoder takes fp32 images whatever its dtype (its DWT runs in fp32); the decoder takes
        // latents in its own dtype.
        using var input = part == "encoder"
            ? (rand([o.Batch, 3, o.Resolution, o.Resolution], device: device) * 2 - 1)
            : randn([o.Batch, 12, latent, latent], dtype, device);
        using var x = channelsLast ? MemoryLayout.ToChannelsLast(input) : input.alias();

        using var _ = no_grad();
        void Once()
        {
            using var y = module.call(x);
        }
        for (int i = 0; i < o.Warmup; i++) Once();
        Sync(device);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < o.Iters; i++) Once();
        Sync(device);
        double s = sw.Elapsed.TotalSeconds;
        return new Row(part, precision, layout, o.Batch, o.Resolution, o.Iters, s, o.Batch * o.Iters / s, 1000 * s / o.Iters);
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    private static string Markdown(List<Row> rows, Options o, string deviceName, bool isCuda, string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("# model-inference");
        sb.AppendLine();
        sb.AppendLine($"- date (UTC): {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", inv)}");
        sb.AppendLine($"- device: {deviceName}");
        sb.AppendLine($"- command: `litevae-bench model-inference {string.Join(' ', args)}`");
        sb.AppendLine($"- TorchSharp {typeof(torch).Assembly.GetName().Version}{(isCuda ? $", cudnn allow_tf32 = {backends.cudnn.allow_tf32}" : "")}");
        sb.AppendLine($"- {o.Resolution} px, batch {o.Batch}, {o.Warmup} warm-up + {o.Iters} timed iterations, no_grad, random weights; encoder = LiteVAE-B (nz 12), decoder = reference decoder (nz 12)");
        sb.AppendLine("- bf16 = the whole module converted to bfloat16 (the encoder's DWT still runs in fp32); channels_last = weights and input in NHWC memory order");
        sb.AppendLine();
        sb.AppendLine("| part | precision | layout | img/s | ms/batch | PyTorch reference img/s (H100, batch 64, 256 px) |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Format(inv, "| {0} | {1} | {2} | {3:F1} | {4:F2} | {5} |", r.Part, r.Precision, r.Layout, r.ImagesPerSecond, r.MsPerBatch,
                Peers.GetValueOrDefault($"{r.Part} {r.Precision}", "")));
        sb.AppendLine();
        sb.AppendLine("Reference numbers are only comparable on the same card at batch 64 and 256 px; rerun both in one session to compare (run-to-run noise is about 6%).");
        return sb.ToString();
    }

    private static string DeviceName(Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            try
            {
                var psi = new ProcessStartInfo("nvidia-smi", $"--query-gpu=name --format=csv,noheader --id={Math.Max(device.index, 0)}")
                { RedirectStandardOutput = true, RedirectStandardError = true };
                using var p = Process.Start(psi)!;
                string name = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit(5000);
                if (name.Length > 0) return $"{name} (cuda:{Math.Max(device.index, 0)})";
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException) { }
            return $"CUDA device {Math.Max(device.index, 0)} (name unavailable: nvidia-smi not found)";
        }
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "CPU"
            : "CPU";
        return $"{cpu} ({Environment.ProcessorCount} cores, {get_num_threads()} torch threads)";
    }

    public string Usage =>
        "usage: litevae-bench model-inference [--device auto|cpu|cuda[:N]] [--resolution 256] [--batch 64] [--iters 20] [--warmup 5]\n" +
        "       [--precision fp32,bf16] [--layout nchw,channels_last] [--parts encoder,decoder] [--out bench/results] [--threads N]\n" +
        "CPU smoke run: --device cpu --resolution 64 --batch 2 --iters 2 --warmup 1 --precision fp32 (bf16 convs are very slow on most CPUs).";

    private static Options Parse(string[] args)
    {
        var o = new Options("auto", 256, 64, 20, 5, ["fp32", "bf16"], ["nchw", "channels_last"], ["encoder", "decoder"], Path.Combine("bench", "results"));
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Positive(string v) => int.TryParse(v, out int n) && n > 0 ? n : throw new ArgumentException($"'{v}' must be a positive integer.");
            string[] List(string v, string[] allowed)
            {
                var items = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var bad = items.Where(x => !allowed.Contains(x)).ToList();
                return bad.Count == 0 && items.Length > 0 ? items : throw new ArgumentException($"'{v}': choose from {string.Join(", ", allowed)}.");
            }
            o = args[i] switch
            {
                "--device" => o with { Device = Next() },
                "--resolution" => o with { Resolution = Positive(Next()) },
                "--batch" => o with { Batch = Positive(Next()) },
                "--iters" => o with { Iters = Positive(Next()) },
                "--warmup" => o with { Warmup = int.TryParse(Next(), out int w) && w >= 0 ? w : throw new ArgumentException("--warmup must be 0 or more.") },
                "--precision" => o with { Precisions = List(Next(), ["fp32", "bf16"]) },
                "--layout" => o with { Layouts = List(Next(), ["nchw", "channels_last"]) },
                "--parts" => o with { Parts = List(Next(), ["encoder", "decoder"]) },
                "--out" => o with { Out = Next() },
                "--threads" => o with { Threads = Positive(Next()) },
                _ => throw new ArgumentException($"unknown option '{args[i]}'."),
            };
        }
        if (o.Resolution % 8 != 0) throw new ArgumentException($"--resolution {o.Resolution} must be a multiple of 8.");
        return o;
    }
}
