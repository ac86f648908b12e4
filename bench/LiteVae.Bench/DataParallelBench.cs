using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LiteVae.Bench.DataParallel;
using LiteVae.Model.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench;

/// <summary>
/// Data-parallel training on 1..N ranks: collective correctness checks, all-reduce time by size, and the
/// LiteVAE training step (img/s, scaling efficiency, all-reduce time per step, data wait per step).
///
/// GPU:  litevae-bench data-parallel --device cuda --ranks 1,2 --model b --size 256 --batch 16 --precision bf16
/// CPU:  litevae-bench data-parallel --device cpu --ranks 1,2 --model tiny --size 32 --batch 2 --steps 5 --warmup 1
///
/// Ranks are separate processes (--mode processes, the default, one GPU each through CUDA_VISIBLE_DEVICES)
/// or threads of this process (--mode threads, cuda:r each) — the two process models, measured side by side.
/// --ranks-per-gpu 2 runs two ranks on each GPU (NCCL refuses two ranks of one communicator on one GPU, so
/// each rank gets its own NCCL_HOSTID and NCCL talks over sockets: it exercises the N-rank code path, its
/// timings are not a scaling result).
/// </summary>
internal sealed class DataParallelBench : IBenchmark
{
    public string Name => "data-parallel";

    public string Description => "data-parallel training over N ranks (NCCL or TCP): checks, all-reduce, img/s scaling";

    public string Usage => """
        usage: litevae-bench data-parallel [--device cpu|cuda] [--ranks 1,2] [--mode processes|threads] [--ranks-per-gpu N] [--backend ...]
               [--model tiny|s|b] [--size 256] [--batch 16] [--precision fp32|bf16] [--discriminator ...] [--steps N] [--warmup N]
               [--allreduce-mb LIST] [--workloads LIST] [--nccl-library PATH] [--timeout-s N]
        GPU: --device cuda --ranks 1,2 --model b --size 256 --batch 16 --precision bf16
        CPU: --device cpu --ranks 1,2 --model tiny --size 32 --batch 2 --steps 5 --warmup 1
        """;

    private const string ResultPrefix = "RESULT ";

    public int Run(string[] args)
    {
        var (o, raw) = DataParallelOptions.Parse(args);
        if (raw.ContainsKey("worker"))
            return RunWorkerProcess(o, raw);

        Console.WriteLine($"data-parallel: ranks {string.Join(",", o.Ranks)}, {o.Device}, backend {o.ResolvedBackend}, {o.Mode}, " +
                          $"workloads {string.Join(",", o.Workloads)}, model {o.Model} {o.Size}² batch {o.Batch}/rank {o.Precision}");
        int gpus = o.Cuda ? cuda.device_count() : 0;
        var runs = new List<(int World, List<Dictionary<string, object?>> Ranks)>();
        foreach (int world in o.Ranks)
        {
            if (o.Cuda && world > gpus * o.RanksPerGpu)
            {
                Console.WriteLine($"skipping {world} ranks: {gpus} GPU(s) × {o.RanksPerGpu} rank(s) per GPU");
                continue;
            }
            Console.WriteLine($"--- {world} rank(s)");
            var results = o.Mode == "threads" ? RunThreads(o, world) : RunProcesses(o, world);
            runs.Add((world, results));
        }
        Report(o, runs, gpus);
        return runs.All(r => r.Ranks.All(x => x.TryGetValue("check", out var c) is false || CheckOk(c))) ? 0 : 1;
    }

    private static bool CheckOk(object? check) => check switch
    {
        Dictionary<string, object?> d => d["ok"] is true,
        JsonElement e => e.GetProperty("ok").GetBoolean(),
        _ => false,
    };

    // ------------------------------------------------------------------ rank launching

    private static int RunWorkerProcess(DataParallelOptions o, Dictionary<string, string> raw)
    {
        int rank = int.Parse(raw["rank"], CultureInfo.InvariantCulture);
        int world = int.Parse(raw["world"], CultureInfo.InvariantCulture);
        var id = CollectiveGroupId.ParseHex(raw["group"]);
        // Processes mode: CUDA_VISIBLE_DEVICES shows this rank one GPU, which is cuda:0.
        var device = o.Cuda ? new Device(DeviceType.CUDA, 0) : CPU;
        var result = RankWorker.Run(o, rank, world, id, device, s => Console.WriteLine(s));
        Console.WriteLine(ResultPrefix + JsonSerializer.Serialize(result));
        return 0;
    }

    private static List<Dictionary<string, object?>> RunThreads(DataParallelOptions o, int world)
    {
        var id = TcpCollective.CreateGroupId(TcpCollectiveOptions.Loopback with { JoinTimeout = TimeSpan.FromSeconds(o.TimeoutS) });
        var results = new Dictionary<string, object?>[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                var device = o.Cuda ? new Device(DeviceType.CUDA, r / o.RanksPerGpu) : CPU;
                results[r] = RankWorker.Run(o, r, world, id, device, s => Console.WriteLine($"[rank {r}] {s}"));
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        }) { Name = $"rank-{r}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.FirstOrDefault(e => e is not null) is { } err)
            throw new InvalidOperationException($"a rank failed: {err.Message}", err);
        return results.ToList();
    }

    private static List<Dictionary<string, object?>> RunProcesses(DataParallelOptions o, int world)
    {
        var id = TcpCollective.CreateGroupId(TcpCollectiveOptions.Loopback with { JoinTimeout = TimeSpan.FromSeconds(o.TimeoutS) });
        var procs = new List<Process>();
        var results = new Dictionary<string, object?>?[world];
        try
        {
            for (int r = 0; r < world; r++)
            {
                var psi = SelfStartInfo();
                foreach (var a in new[] { "data-parallel", "--worker", "--rank", r.ToString(CultureInfo.InvariantCulture),
                             "--world", world.ToString(CultureInfo.InvariantCulture), "--group", id.ToHex() }.Concat(o.ToArgs()))
                    psi.ArgumentList.Add(a);
                if (o.Cuda)
                {
                    psi.Environment["CUDA_VISIBLE_DEVICES"] = (r / o.RanksPerGpu).ToString(CultureInfo.InvariantCulture);
                    if (o.RanksPerGpu > 1)
                        psi.Environment["NCCL_HOSTID"] = $"litevae-rank-{r}";
                }
                else
                {
                    psi.Environment["OMP_NUM_THREADS"] = Math.Max(1, Environment.ProcessorCount / world).ToString(CultureInfo.InvariantCulture);
                }
                psi.RedirectStandardOutput = true;
                psi.RedirectStandardError = true;
                var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start a rank process.");
                int rank = r;
                p.OutputDataReceived += (_, e) =>
                {
                    if (e.Data is null) return;
                    if (e.Data.StartsWith(ResultPrefix, StringComparison.Ordinal))
                        results[rank] = JsonSerializer.Deserialize<Dictionary<string, object?>>(e.Data[ResultPrefix.Length..]);
                    else
                        Console.WriteLine($"[rank {rank}] {e.Data}");
                };
                p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[rank {rank}] {e.Data}"); };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                procs.Add(p);
            }
            var deadline = DateTime.UtcNow.AddSeconds(o.TimeoutS + 60);
            foreach (var p in procs)
            {
                if (!p.WaitForExit(Math.Max(1, (int)(deadline - DateTime.UtcNow).TotalMilliseconds)))
                    throw new TimeoutException($"rank processes did not finish within {o.TimeoutS + 60} s.");
                p.WaitForExit();
            }
            var failed = procs.Select((p, r) => (p, r)).Where(t => t.p.ExitCode != 0 || results[t.r] is null).ToList();
            if (failed.Count > 0)
                throw new InvalidOperationException($"rank(s) {string.Join(", ", failed.Select(f => $"{f.r} (exit {f.p.ExitCode})"))} failed; see their output above.");
            return results.Select(r => r!).ToList();
        }
        finally
        {
            foreach (var p in procs)
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }

    /// <summary>Starts this same program (the apphost, or `dotnet litevae-bench.dll`).</summary>
    internal static ProcessStartInfo SelfStartInfo()
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path.");
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            psi.ArgumentList.Add(typeof(DataParallelBench).Assembly.Location);
        return psi;
    }

    // ------------------------------------------------------------------ report

    private void Report(DataParallelOptions o, List<(int World, List<Dictionary<string, object?>> Ranks)> runs, int gpus)
    {
        var md = new StringBuilder();
        string card = o.Cuda ? GpuName() : $"CPU ({Environment.ProcessorCount} logical cores)";
        md.AppendLine($"# data-parallel — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine();
        md.AppendLine($"Card: {card} × {gpus}; backend {o.ResolvedBackend}; ranks as {o.Mode}; {o.RanksPerGpu} rank(s) per GPU.");
        md.AppendLine($"Training step: model {o.Model}, {o.Size}², {o.Batch} images per rank, {o.Precision}, discriminator {o.Discriminator}; {o.Steps} timed steps after {o.Warmup}.");
        md.AppendLine();
        var train = runs.Where(r => r.Ranks[0].ContainsKey("train")).ToList();
        if (train.Count > 0)
        {
            md.AppendLine("| ranks | global batch | ms/step | img/s | scaling | efficiency | all-reduce ms/step | data wait ms/step | weights identical |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|");
            double? baseIps = null;
            foreach (var (world, ranks) in train)
            {
                var t = ranks.Select(r => Json(r["train"])).ToList();
                double ms = t.Max(x => x.GetProperty("ms_per_step").GetDouble());
                double ips = world * o.Batch * 1000.0 / ms;
                double allReduce = t.Average(x => x.GetProperty("allreduce_ms_per_step").GetDouble());
                double wait = t.Average(x => x.GetProperty("data_wait_ms_per_step").GetDouble());
                bool same = t.All(x => x.GetProperty("weights_identical").GetBoolean());
                baseIps ??= world == 1 ? ips : null;
                string scaling = baseIps is double b ? $"{ips / b:0.00}×" : "n/a";
                string eff = baseIps is double b2 ? $"{ips / b2 / world:0.00}" : "n/a";
                md.AppendLine($"| {world} | {world * o.Batch} | {ms:0.0} | {ips:0.0} | {scaling} | {eff} | {allReduce:0.00} | {wait:0.00} | {(same ? "yes" : "NO")} |");
            }
            md.AppendLine();
        }
        foreach (var (world, ranks) in runs.Where(r => r.Ranks[0].ContainsKey("allreduce")))
        {
            md.AppendLine($"All-reduce (fp32, average), {world} rank(s): " + string.Join(", ",
                Json(ranks[0]["allreduce"]).EnumerateArray().Select(e => $"{e.GetProperty("mb").GetDouble():0.##} MB {e.GetProperty("ms").GetDouble():0.###} ms ({e.GetProperty("bus_gb_s").GetDouble():0.0} GB/s bus)")));
            md.AppendLine();
        }
        foreach (var (world, ranks) in runs.Where(r => r.Ranks[0].ContainsKey("check")))
            md.AppendLine($"Collective checks, {world} rank(s): {(ranks.All(r => CheckOk(r["check"])) ? "passed" : "FAILED")}");
        Console.WriteLine();
        Console.WriteLine(md.ToString());

        string dir = o.Out ?? Path.Combine("bench", "results");
        Directory.CreateDirectory(dir);
        string stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(dir, $"data-parallel-{stamp}.md"), md.ToString());
        File.WriteAllText(Path.Combine(dir, $"data-parallel-{stamp}.json"), JsonSerializer.Serialize(new
        {
            benchmark = Name,
            date = DateTime.UtcNow.ToString("o"),
            card,
            gpus,
            options = o,
            runs = runs.Select(r => new { world = r.World, ranks = r.Ranks }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {Path.Combine(dir, $"data-parallel-{stamp}.md")} (+ .json)");
    }

    private static JsonElement Json(object? o) => o is JsonElement e ? e : JsonSerializer.SerializeToElement(o);

    private static string GpuName()
    {
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", "--query-gpu=name --format=csv,noheader") { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            string first = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "unknown GPU";
            p.WaitForExit();
            return first.Trim();
        }
        catch (Exception)
        {
            return "unknown GPU";
        }
    }
}
