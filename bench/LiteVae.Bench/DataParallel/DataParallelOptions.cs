using System.Globalization;

namespace LiteVae.Bench.DataParallel;

/// <summary>Options of `litevae-bench data-parallel` (parent and rank processes share them).</summary>
internal sealed record DataParallelOptions
{
    public int[] Ranks { get; init; } = [1, 2];
    public string Device { get; init; } = "cpu";
    public string Backend { get; init; } = "auto";
    public string Mode { get; init; } = "processes";
    public int RanksPerGpu { get; init; } = 1;
    public string[] Workloads { get; init; } = ["check", "allreduce", "train"];
    public int Steps { get; init; } = 20;
    public int Warmup { get; init; } = 5;
    public int Batch { get; init; } = 16;
    public int Size { get; init; } = 256;
    public string Precision { get; init; } = "bf16";
    public string Model { get; init; } = "b";
    public string Discriminator { get; init; } = "patchgan";
    public double[] AllReduceMb { get; init; } = [];
    public string? NcclLibrary { get; init; }
    public int TimeoutS { get; init; } = 600;
    public string? Out { get; init; }

    public bool Cuda => Device.StartsWith("cuda", StringComparison.Ordinal);
    public string ResolvedBackend => Backend == "auto" ? (Cuda ? "nccl" : "tcp") : Backend;

    /// <summary>Parses `--key value` pairs; unknown keys are errors (a typo must not silently change a run).</summary>
    public static (DataParallelOptions Options, Dictionary<string, string> Raw) Parse(string[] args)
    {
        var raw = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"data-parallel: unexpected argument '{args[i]}' (options are --key value).");
            string key = args[i][2..];
            if (key == "worker") { raw[key] = "true"; continue; }
            if (i + 1 >= args.Length)
                throw new ArgumentException($"data-parallel: --{key} needs a value.");
            raw[key] = args[++i];
        }
        var o = new DataParallelOptions();
        foreach (var (k, v) in raw)
        {
            o = k switch
            {
                "ranks" => o with { Ranks = v.Split(',').Select(Int).ToArray() },
                "device" => o with { Device = v },
                "backend" => o with { Backend = v is "auto" or "nccl" or "tcp" ? v : throw Bad(k, v, "auto, nccl or tcp") },
                "mode" => o with { Mode = v is "processes" or "threads" ? v : throw Bad(k, v, "processes or threads") },
                "ranks-per-gpu" => o with { RanksPerGpu = Int(v) },
                "workloads" => o with { Workloads = v.Split(',') },
                "steps" => o with { Steps = Int(v) },
                "warmup" => o with { Warmup = Int(v) },
                "batch" => o with { Batch = Int(v) },
                "size" => o with { Size = Int(v) },
                "precision" => o with { Precision = v },
                "model" => o with { Model = v },
                "discriminator" => o with { Discriminator = v },
                "allreduce-mb" => o with { AllReduceMb = v.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray() },
                "nccl-library" => o with { NcclLibrary = v },
                "timeout-s" => o with { TimeoutS = Int(v) },
                "out" => o with { Out = v },
                "worker" or "rank" or "world" or "group" => o,
                _ => throw new ArgumentException($"data-parallel: unknown option --{k}."),
            };
        }
        foreach (var w in o.Workloads)
            if (w is not ("check" or "allreduce" or "train"))
                throw Bad("workloads", w, "check, allreduce, train");
        if (o.Ranks.Any(r => r < 1) || o.RanksPerGpu < 1 || o.Steps < 1 || o.Batch < 1)
            throw new ArgumentException("data-parallel: --ranks, --ranks-per-gpu, --steps and --batch must be positive.");
        return (o, raw);
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static ArgumentException Bad(string key, string value, string allowed) =>
        new($"data-parallel: --{key} {value}: use {allowed}.");

    /// <summary>The arguments that reproduce these options in a rank process.</summary>
    public IEnumerable<string> ToArgs()
    {
        yield return "--device"; yield return Device;
        yield return "--backend"; yield return Backend;
        yield return "--ranks-per-gpu"; yield return RanksPerGpu.ToString(CultureInfo.InvariantCulture);
        yield return "--workloads"; yield return string.Join(',', Workloads);
        yield return "--steps"; yield return Steps.ToString(CultureInfo.InvariantCulture);
        yield return "--warmup"; yield return Warmup.ToString(CultureInfo.InvariantCulture);
        yield return "--batch"; yield return Batch.ToString(CultureInfo.InvariantCulture);
        yield return "--size"; yield return Size.ToString(CultureInfo.InvariantCulture);
        yield return "--precision"; yield return Precision;
        yield return "--model"; yield return Model;
        yield return "--discriminator"; yield return Discriminator;
        if (AllReduceMb.Length > 0) { yield return "--allreduce-mb"; yield return string.Join(',', AllReduceMb.Select(m => m.ToString(CultureInfo.InvariantCulture))); }
        if (NcclLibrary is not null) { yield return "--nccl-library"; yield return NcclLibrary; }
        yield return "--timeout-s"; yield return TimeoutS.ToString(CultureInfo.InvariantCulture);
    }
}
