using System.Diagnostics;
using System.Text.Json;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// One discriminator training step as the trainer runs it: D on a real batch, D on a (detached)
/// fake batch, hinge loss, backward, Adam. Reports ms/step and img/s per discriminator kind.
/// `litevae-bench disc-step [--kinds patchgan,unetgan-s,...] [--batch 16] [--size 256] [--steps 20]
/// [--warmup 3] [--device cpu|cuda] [--dtype fp32|bf16]`. bf16 converts the whole module (pure
/// bf16, no autocast in TorchSharp). GigaGAN runs only at its build size (256).
/// </summary>
internal sealed class DiscriminatorStepBench : IBenchmark
{
    public string Name => "disc-step";

    public string Usage => """
        usage: litevae-bench disc-step [--kinds patchgan,unetgan-s,...] [--batch 16] [--size 256] [--steps 20] [--warmup 3]
               [--device cpu|cuda] [--dtype fp32|bf16]
        """;

    public string Description => "discriminator training step (2 forwards, backward, Adam) per kind";

    private static readonly string[] AllKinds = ["patchgan", "unetgan-s", "unetgan-m", "unetgan-l", "gigagan"];

    public int Run(string[] args)
    {
        var opts = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--"))
            {
                Console.Error.WriteLine($"disc-step: unexpected argument '{args[i]}'.");
                return 2;
            }
            opts[args[i][2..]] = args[i + 1];
        }
        string[] kinds = opts.TryGetValue("kinds", out var k) ? k.Split(',') : AllKinds;
        int batch = int.Parse(opts.GetValueOrDefault("batch", "16"));
        int size = int.Parse(opts.GetValueOrDefault("size", "256"));
        int steps = int.Parse(opts.GetValueOrDefault("steps", "20"));
        int warmup = int.Parse(opts.GetValueOrDefault("warmup", "3"));
        var device = new Device(opts.GetValueOrDefault("device", "cpu"));
        var dtype = opts.GetValueOrDefault("dtype", "fp32") switch
        {
            "fp32" => ScalarType.Float32,
            "bf16" => ScalarType.BFloat16,
            var other => throw new ArgumentException($"disc-step: --dtype {other}: use fp32 or bf16."),
        };
        if (device.type == DeviceType.CUDA)
            backends.cuda.matmul.allow_tf32 = true;

        var results = new List<object>();
        Console.WriteLine($"disc-step: batch {batch}, {size}x{size}, {dtype}, {device}, {steps} timed steps after {warmup}");
        Console.WriteLine($"{"kind",-10} {"ms/step",9} {"img/s",8}");
        foreach (var kind in kinds)
        {
            int s = kind == "gigagan" ? 256 : size;
            using var d = DiscriminatorFactory.Create(Config(kind));
            d.Module.to(device).to(dtype);
            d.Module.train();
            using var optimizer = optim.Adam(d.Module.parameters(), 1e-4, 0.5, 0.9);
            using var real = (rand(batch, 3, s, s, device: device) * 2 - 1).to(dtype);
            using var fake = (rand(batch, 3, s, s, device: device) * 2 - 1).to(dtype);
            void Step()
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var loss = GanLosses.Discriminator(GanLossKind.Hinge, d.Logits(real), d.Logits(fake));
                loss.backward();
                optimizer.step();
            }
            for (int i = 0; i < warmup; i++) Step();
            Sync(device);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) Step();
            Sync(device);
            double ms = sw.Elapsed.TotalMilliseconds / steps;
            double ips = batch * 1000.0 / ms;
            Console.WriteLine($"{kind,-10} {ms,9:F1} {ips,8:F1}");
            results.Add(new { kind, size = s, batch, dtype = dtype.ToString(), device = device.ToString(), ms_per_step = ms, images_per_s = ips });
        }

        string dir = Path.Combine("bench", "results");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"disc-step-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            benchmark = Name,
            machine = Environment.MachineName,
            cpu_threads = Environment.ProcessorCount,
            cuda = cuda.is_available(),
            date = DateTime.UtcNow.ToString("o"),
            results,
        }, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    private static DiscriminatorConfig Config(string kind) => kind switch
    {
        "patchgan" => new PatchGanConfig(),
        "unetgan-s" => UNetGanConfig.Preset("S"),
        "unetgan-m" => UNetGanConfig.Preset("M"),
        "unetgan-l" => UNetGanConfig.Preset("L"),
        "gigagan" => new GigaGanConfig(),
        _ => throw new ArgumentException($"disc-step: unknown kind '{kind}' (one of {string.Join(", ", AllKinds)})."),
    };

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA)
            cuda.synchronize();
    }
}
