using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LiteVae.Model;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// `litevae-bench train-step`: the full LiteVAE training step (LiteVAE-B encoder + decoder, PatchGAN,
/// VGG16-LPIPS; G step then D step on the same reconstruction) in img/s, ms/step and device memory,
/// per precision / layout / D-freeze mode, plus a breakdown of where a step's time goes (a separate
/// profiling pass that synchronises at every phase boundary). Each configuration runs in its own
/// child process so memory numbers do not include an earlier configuration's cached blocks.
///
/// GPU:  scripts/gpu/run.sh litevae-bench train-step --device cuda --resolution 256 --batch 16
/// CPU:  dotnet run --project bench/LiteVae.Bench -c Release -- train-step --device cpu --resolution 64 --batch 2 --steps 2 --warmup 1
/// </summary>
public sealed class TrainStepBench : IBenchmark
{
    public string Name => "train-step";
    public string Description => "full LiteVAE-B + PatchGAN + LPIPS training step: img/s, memory, time breakdown";

    public string Usage => """
        litevae-bench train-step [options]
          --device cuda|cpu          (default: cuda if available)
          --resolution N             image side (default 256)
          --batch N                  (default 16)
          --precision LIST           fp32,bf16,fp16 (default fp32,bf16)
          --channels-last on|off|both|all|every  (default every on GPU, off on CPU); on = channels-last
                                     decoder, D and LPIPS with an NCHW encoder (the trainer's
                                     default), all = the encoder too, every = off, on and all
          --d-freeze requires-grad|zero-grad|both  how D is kept out of the G step (default requires-grad)
          --steps N --warmup N       timed and untimed steps (default 20 / 5)
          --profile-steps N          steps of the synchronised breakdown pass (default 3; 0 = none)
          --encoder S|B|M|L          (default B)   --disc patchgan|none (default patchgan)
          --weights DIR              folder with vgg16-397923af.pth and lpips-v0.1-vgg.pth; without
                                     it LPIPS runs with random weights (timing only, labelled)
          --cudnn-benchmark on|off   cuDNN autotuner through libtorch's setBenchmarkCuDNN (default on)
          --snapshots N              checkpoint snapshots timed after the steps (default 3; 0 = none):
                                     the device→host copy of weights, EMA, D and Adam state that
                                     stalls training at each checkpoint (the write runs off-thread)
          --out FILE                 JSON results (default bench/results/train-step-<time>.json)
        """;

    // PyTorch reference (open-litevae code, PyTorch 2.11 eager, H100, batch 16 at 256²), platform README.
    // Constants from 2026-11-26, another day's call: printed for orientation only. A ratio is published only
    // from a same-call run of bench/peers/torch_train_step.py (scripts/gpu/bench-suite.sh does both).
    private static readonly (string Label, double ImagesPerSecond)[] Peers =
    [
        ("PyTorch fp32 (TF32 convs)", 45.9),
        ("PyTorch bf16 autocast + channels_last", 55.9),
        ("PyTorch pure bf16 + channels_last", 63.4),
        ("PyTorch bf16 autocast + CL, torch.compile", 73.3),
    ];

    private sealed record Settings(string Device, int Resolution, int Batch, int Steps, int Warmup, int ProfileSteps,
        string Encoder, string Disc, string? Weights, bool CudnnBenchmark, int Snapshots, string? Out);

    private sealed record Variant(Precision Precision, bool ChannelsLast, DiscriminatorFreeze Freeze, bool EncoderChannelsLast = false)
    {
        public string Label => $"{Precision.Name()}{(ChannelsLast ? EncoderChannelsLast ? "+CL(all)" : "+CL" : "")}{(Freeze == DiscriminatorFreeze.ZeroGrad ? " (D zero-grad)" : "")}";
    }

    private sealed record Result(string Variant, double MsPerStep, double ImagesPerSecond, double? DeviceMemoryGiB,
        IReadOnlyList<KeyValuePair<string, double>> BreakdownMs, string LpipsWeights, string? CudnnBenchmark,
        CheckpointStall? Snapshot);

    /// <summary>Training stalls this long per checkpoint: the synchronous device→host snapshot.</summary>
    private sealed record CheckpointStall(int Count, double MeanMs, double MaxMs, double MiB);

    public int Run(string[] args)
    {
        var opts = Args.Parse(args);
        string device = opts.Get("device", cuda.is_available() ? "cuda" : "cpu");
        var s = new Settings(device, opts.Int("resolution", 256), opts.Int("batch", 16), opts.Int("steps", 20), opts.Int("warmup", 5),
            opts.Int("profile-steps", 3), opts.Get("encoder", "B"), opts.Get("disc", "patchgan"), opts.GetOrNull("weights"),
            opts.Get("cudnn-benchmark", "on") == "on", opts.Int("snapshots", 3), opts.GetOrNull("out"));
        if (s.Resolution % 8 != 0) throw new ArgumentException("--resolution must be a multiple of 8.");

        if (opts.GetOrNull("single") is { } single)
        {
            // Child mode: one variant, result as one JSON line on stdout.
            var v = JsonSerializer.Deserialize<VariantDto>(single)!.ToVariant();
            var r = RunVariant(s, v);
            Console.WriteLine("RESULT " + JsonSerializer.Serialize(r));
            return 0;
        }

        var precisions = opts.Get("precision", "fp32,bf16").Split(',').Select(PrecisionNames.Parse).ToList();
        string cl = opts.Get("channels-last", device == "cuda" ? "every" : "off");
        (bool On, bool Encoder)[] layouts = cl switch
        {
            "on" => [(true, false)], "off" => [(false, false)], "all" => [(true, true)],
            "both" => [(false, false), (true, false)], "every" => [(false, false), (true, false), (true, true)],
            _ => throw new ArgumentException("--channels-last: on, off, both, all or every"),
        };
        string fr = opts.Get("d-freeze", "requires-grad");
        DiscriminatorFreeze[] freezes = fr switch
        {
            "requires-grad" => [DiscriminatorFreeze.RequiresGrad],
            "zero-grad" => [DiscriminatorFreeze.ZeroGrad],
            "both" => [DiscriminatorFreeze.RequiresGrad, DiscriminatorFreeze.ZeroGrad],
            _ => throw new ArgumentException("--d-freeze: requires-grad, zero-grad or both"),
        };

        Console.WriteLine($"train-step: LiteVAE-{s.Encoder.ToUpperInvariant()} (nz 12) + decoder + {s.Disc} + VGG16-LPIPS, batch {s.Batch} at {s.Resolution}², device {device}");
        var results = new List<Result>();
        foreach (var p in precisions)
            foreach (var layout in layouts)
                foreach (var f in freezes)
                {
                    var variant = new Variant(p, layout.On, f, layout.Encoder);
                    var r = RunChild(args, variant);
                    results.Add(r);
                    Console.WriteLine($"  {variant.Label,-26} {r.MsPerStep,8:0.0} ms/step {r.ImagesPerSecond,8:0.00} img/s   memory {(r.DeviceMemoryGiB is double g ? $"{g:0.0} GiB" : "n/a")}" +
                                      (r.Snapshot is { } c ? $"   checkpoint stall {c.MeanMs:0.0} ms (max {c.MaxMs:0.0}, {c.MiB:0} MiB)" : ""));
                }

        Console.WriteLine();
        Console.WriteLine($"LPIPS weights: {results[0].LpipsWeights}; cuDNN benchmark: {results[0].CudnnBenchmark ?? "n/a"}");
        if (s.Resolution == 256 && s.Batch == 16 && device == "cuda")
        {
            Console.WriteLine("Peers (same step in PyTorch, H100, 2026-11-26 — another day's call, for orientation only;");
            Console.WriteLine("run bench/peers/torch_train_step.py in the same call for a ratio):");
            foreach (var (label, ips) in Peers)
                Console.WriteLine($"  {label,-44} {ips,6:0.0} img/s");
        }
        foreach (var r in results.Where(r => r.BreakdownMs.Count > 0))
        {
            Console.WriteLine($"\nbreakdown, {r.Variant} (synchronised after each phase, ms per step):");
            double total = r.BreakdownMs.Sum(b => b.Value);
            foreach (var (phase, ms) in r.BreakdownMs)
                Console.WriteLine($"  {phase,-16} {ms,8:0.0} ms  {100 * ms / total,5:0.0}%");
            Console.WriteLine($"  {"sum",-16} {total,8:0.0} ms");
        }

        string outPath = s.Out ?? Path.Combine("bench", "results", $"train-step-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, JsonSerializer.Serialize(new
        {
            benchmark = Name, date = DateTime.UtcNow.ToString("O"), machine = Environment.MachineName, settings = s,
            peers = Peers.Select(p => new { p.Label, p.ImagesPerSecond }), results,
        }, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"\nresults: {outPath}");
        return 0;
    }

    private sealed record VariantDto(string Precision, bool ChannelsLast, string Freeze, bool EncoderChannelsLast)
    {
        public Variant ToVariant() => new(PrecisionNames.Parse(Precision), ChannelsLast, Enum.Parse<DiscriminatorFreeze>(Freeze), EncoderChannelsLast);
        public static VariantDto From(Variant v) => new(v.Precision.Name(), v.ChannelsLast, v.Freeze.ToString(), v.EncoderChannelsLast);
    }

    private static Result RunChild(string[] args, Variant v)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the benchmark executable.");
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        // Under `dotnet litevae-bench.dll`, ProcessPath is dotnet: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            psi.ArgumentList.Add(typeof(TrainStepBench).Assembly.Location);
        psi.ArgumentList.Add("train-step");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--single");
        psi.ArgumentList.Add(JsonSerializer.Serialize(VariantDto.From(v)));
        using var child = Process.Start(psi)!;
        string? resultLine = null;
        while (child.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith("RESULT ", StringComparison.Ordinal)) resultLine = line[7..];
            else Console.WriteLine("    | " + line);
        }
        child.WaitForExit();
        if (child.ExitCode != 0 || resultLine is null)
            throw new InvalidOperationException($"variant {v.Label} failed (exit code {child.ExitCode}).");
        return JsonSerializer.Deserialize<Result>(resultLine)!;
    }

    private static Result RunVariant(Settings s, Variant v)
    {
        var device = s.Device == "cuda" ? CUDA : CPU;
        string? cudnn = null;
        if (device.type == DeviceType.CUDA)
            cudnn = NativeTorchSettings.TrySetCudnnBenchmark(s.CudnnBenchmark) ? (s.CudnnBenchmark ? "on" : "off") : "not settable";
        long? baseline = device.type == DeviceType.CUDA ? NativeTorchSettings.CudaDeviceMemoryUsed() : null;

        manual_seed(1);
        var ae = new LiteAutoencoder(AutoencoderConfig.Preset(s.Encoder, 12));
        IDiscriminator? disc = s.Disc == "none" ? null : new PatchGanDiscriminator(new PatchGanConfig());
        string lpipsLabel;
        Lpips lpips;
        var loaded = s.Weights is null ? null : PretrainedNetworks.LoadLpips(new WeightFiles(s.Weights, "--weights"), LpipsNet.Vgg);
        if (loaded is { IsAvailable: true })
        {
            lpips = loaded.Value!;
            lpipsLabel = "official VGG16 + LPIPS v0.1";
        }
        else
        {
            lpips = new Lpips(LpipsNet.Vgg);
            using (no_grad())
                foreach (var p in lpips.parameters()) p.normal_(0, 0.02);
            lpipsLabel = "RANDOM (timing only; pass --weights for the real network)" + (loaded?.Reason is { } why ? $" [{why}]" : "");
        }
        var options = new TrainerOptions { Precision = v.Precision, ChannelsLast = v.ChannelsLast, EncoderChannelsLast = v.EncoderChannelsLast, DiscriminatorFreeze = v.Freeze, Seed = 1 };
        using var trainer = new LiteVaeTrainer(ae, disc, lpips, new LossConfig { DiscStart = 0 }, options, device);

        var rng = new Random(5);
        var batches = Enumerable.Range(0, 2).Select(_ =>
        {
            var b = new byte[s.Batch * 3 * s.Resolution * s.Resolution];
            rng.NextBytes(b);
            return b;
        }).ToArray();
        long[] shape = [s.Batch, 3, s.Resolution, s.Resolution];

        for (int i = 0; i < s.Warmup; i++) trainer.TrainStep(batches[i % 2], shape);
        trainer.ReadWindow(); // also synchronises
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < s.Steps; i++) trainer.TrainStep(batches[i % 2], shape);
        var window = trainer.ReadWindow(); // the one sync of the timed window
        double seconds = clock.Elapsed.TotalSeconds;
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        seconds = Math.Max(seconds, clock.Elapsed.TotalSeconds);
        if (window.SkippedSteps.Count > 0)
            Console.WriteLine($"note: {window.SkippedSteps.Count} steps had non-finite gradients (random data and weights)");
        double? memory = device.type == DeviceType.CUDA && NativeTorchSettings.CudaDeviceMemoryUsed() is long used && baseline is long b0
            ? (used - b0) / (1024.0 * 1024 * 1024) : null;

        IReadOnlyList<KeyValuePair<string, double>> breakdown = [];
        if (s.ProfileSteps > 0)
        {
            var profiler = new StepProfiler(device);
            trainer.Profiler = profiler;
            for (int i = 0; i < s.ProfileSteps; i++) trainer.TrainStep(batches[i % 2], shape);
            trainer.Profiler = null;
            trainer.ReadWindow();
            breakdown = profiler.MeanMilliseconds();
        }
        var stall = s.Snapshots > 0 ? TimeSnapshots(trainer, s.Snapshots, device) : null;
        double msPerStep = 1000 * seconds / s.Steps;
        return new Result(v.Label, msPerStep, s.Batch * s.Steps / seconds, memory, breakdown, lpipsLabel, cudnn, stall);
    }

    /// <summary>
    /// Times what a checkpoint costs the training thread: from a synchronised device to a complete host copy
    /// (Snapshot returns only when every tensor is on the host). Starting synchronised leaves out the queued
    /// step a real snapshot first waits for: the thread waits for it at the window's sync anyway. The write to
    /// disk is not included: it runs on the checkpoint writer's thread.
    /// </summary>
    private static CheckpointStall TimeSnapshots(LiteVaeTrainer trainer, int count, Device device)
    {
        var ms = new List<double>();
        double mib = 0;
        for (int i = 0; i < count; i++)
        {
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            var clock = Stopwatch.StartNew();
            using var snapshot = trainer.Snapshot(configText: "", dataPosition: null, metric: null);
            ms.Add(clock.Elapsed.TotalMilliseconds);
            mib = snapshot.Files.Sum(f => f.Tensors.Sum(t => t.Value.NumberOfElements * t.Value.ElementSize)) / (1024.0 * 1024);
        }
        return new CheckpointStall(count, ms.Average(), ms.Max(), mib);
    }

    /// <summary>Minimal --key value parser for the benchmarks.</summary>
    private sealed class Args
    {
        private readonly Dictionary<string, string> _values = new();

        public static Args Parse(string[] args)
        {
            var a = new Args();
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal))
                    throw new ArgumentException($"unexpected argument '{args[i]}' (options look like --name value).");
                string key = args[i][2..];
                string value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
                a._values[key] = value;
            }
            return a;
        }

        public bool Has(string key) => _values.ContainsKey(key);
        public string Get(string key, string fallback) => _values.GetValueOrDefault(key, fallback);
        public string? GetOrNull(string key) => _values.GetValueOrDefault(key);

        public int Int(string key, int fallback) =>
            !_values.TryGetValue(key, out var v) ? fallback
            : int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0 ? n
            : throw new ArgumentException($"--{key} must be a non-negative integer, got '{v}'.");
    }
}
