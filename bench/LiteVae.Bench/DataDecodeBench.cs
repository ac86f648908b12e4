using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LiteVae.Data.Config;
using LiteVae.Data.Decoding;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;

namespace LiteVae.Bench;

/// <summary>
/// data-decode: decode + stochastic rescale + random crop to R² of real JPEGs (the bundled samples, or
/// a folder), images/s on 1 thread and on N threads, beside Python PIL doing the same work on the same
/// files with the same crop plan in the same run, plus the full tar → batch pipeline, peak RSS, and a
/// pixel check of our output against PIL's.
/// </summary>
public sealed class DataDecodeBench : IBenchmark
{
    public string Name => "data-decode";
    public string Description => "JPEG decode + rescale + crop vs Python PIL (images/s per core and all cores)";

    public string Usage => """
        usage: litevae-bench data-decode [--resolution 256] [--threads 1,16] [--seconds S] [--rounds N] [--shards FILE | --folder DIR]
               [--python python3 | --no-python] [--output FILE]
        The bundled sample photos unless --shards/--folder; PIL does the same work on the same files in the same run (needs python3 with Pillow).
        """;

    private sealed record Plan(int Image, int ResizedWidth, int ResizedHeight, int X, int Y, bool Flip);

    /// <summary>Images per wall-clock second and per CPU second (process time); peak RSS for Python rows.</summary>
    private sealed record Rate(double PerSecond, double PerCpuSecond, long PeakRssKb = 0);

    private static TimeSpan CpuTime()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }

    public int Run(string[] args)
    {
        var opts = ParseArgs(args);
        string pil = "not run";
        if (opts.Python is not null)
        {
            pil = ProbePython(opts.Python);
            if (pil.StartsWith("unavailable", StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"warning: Python PIL rows skipped: {opts.Python} {pil}");
                opts = opts with { Python = null };
            }
        }
        opts = opts with { PilVersion = pil };
        int r = opts.Resolution;
        var images = LoadImages(opts);
        Console.WriteLine($"data-decode: {images.Count} JPEGs, resolution {r}, threads {string.Join(",", opts.Threads)}, {opts.Rounds} rounds of {opts.Seconds} s per measurement");

        // One crop plan shared by both sides: 8 draws per image from the training transform.
        var train = new TrainTransform(r, new RescaleOptions(), DecodeOptions.Default);
        var plans = new List<Plan>();
        for (int rep = 0; rep < 8; rep++)
            for (int i = 0; i < images.Count; i++)
            {
                using var header = EncodedImage.Open(images[i].Bytes, DecodeOptions.Default);
                var p = train.Plan(header.OrientedWidth, header.OrientedHeight, new SampleKey(opts.Seed, 0, rep * images.Count + i));
                plans.Add(new Plan(i, p.ResizedWidth, p.ResizedHeight, p.X, p.Y, p.Flip));
            }

        string work = Path.Combine(opts.Output, "tmp", $"data-decode-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        var paths = images.Select((img, i) => Path.Combine(work, $"{i:D5}.jpg")).ToArray();
        for (int i = 0; i < images.Count; i++) File.WriteAllBytes(paths[i], images[i].Bytes);
        string planFile = Path.Combine(work, "plan.tsv");
        File.WriteAllLines(planFile, plans.Select(p =>
            $"{paths[p.Image]}\t{p.ResizedWidth}\t{p.ResizedHeight}\t{p.X}\t{p.Y}\t{(p.Flip ? 1 : 0)}\t{r}"));

        // Every variant runs once per round, rounds interleave, the best round counts: on a shared
        // machine that is the figure least disturbed by other work. CPU seconds (process time) are
        // recorded too, which other processes barely affect.
        var exact = DecodeOptions.Default with { JpegScaledDecode = false };
        var variants = new List<(string What, Func<int, Rate> Measure)>
        {
            ("C# (ours, default: windowed + scaled JPEG decode)", t => MeasureOurs(images, plans, r, DecodeOptions.Default, t, opts.Seconds)),
            ("C# (ours, full-size JPEG decode, PIL-exact)", t => MeasureOurs(images, plans, r, exact, t, opts.Seconds)),
        };
        if (opts.Python is not null)
        {
            variants.Add(("Python PIL (plain)", t => RunPython(opts, planFile, "plain", t, null)));
            variants.Add(("Python PIL (draft)", t => RunPython(opts, planFile, "draft", t, null)));
        }
        variants.Add((opts.Folder is null ? "C# full pipeline: tar → decode → batch" : "C# full pipeline: folder → decode → batch", t => MeasurePipeline(opts, r, t)));
        var rows = new List<(string What, int Threads, Rate Rate)>();
        foreach (int threads in opts.Threads)
        {
            var best = new Rate[variants.Count];
            for (int round = 0; round < opts.Rounds; round++)
                for (int v = 0; v < variants.Count; v++)
                {
                    var rate = variants[v].Measure(threads);
                    Console.WriteLine($"  round {round + 1}, {threads} threads, {variants[v].What}: {rate.PerSecond:F0} images/s, {rate.PerCpuSecond:F0} images/CPU-s");
                    best[v] = best[v] is null ? rate : new Rate(Math.Max(best[v].PerSecond, rate.PerSecond), Math.Max(best[v].PerCpuSecond, rate.PerCpuSecond), Math.Max(best[v].PeakRssKb, rate.PeakRssKb));
                }
            for (int v = 0; v < variants.Count; v++) rows.Add((variants[v].What, threads, best[v]));
        }

        string check = opts.Python is null ? "not run (no Python)" : PixelCheck(opts, images, plans, planFile, work, r);
        long peakRss = PeakRssKb();
        Directory.Delete(work, true);
        string report = Report(opts, images, rows, check, peakRss);
        Directory.CreateDirectory(opts.Output);
        string file = Path.Combine(opts.Output, $"data-decode-{DateTime.Now:yyyyMMdd-HHmmss}.md");
        File.WriteAllText(file, report);
        Console.WriteLine(report);
        Console.WriteLine($"written: {file}");
        return 0;
    }

    private static Rate MeasureOurs(List<(string Name, byte[] Bytes)> images, List<Plan> plans, int r, DecodeOptions decode, int threads, double seconds)
    {
        // Warm-up (JIT, Skia init), then time-boxed runs on `threads` threads pulling from a shared counter.
        RunWorkers(images, plans, r, decode, 1, 0.3);
        return RunWorkers(images, plans, r, decode, threads, seconds);
    }

    private static Rate RunWorkers(List<(string Name, byte[] Bytes)> images, List<Plan> plans, int r, DecodeOptions decode, int threads, double seconds)
    {
        long next = -1, done = 0;
        var cpu0 = CpuTime();
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            var scratch = new TransformScratch();
            var dst = new byte[3 * r * r];
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                var p = plans[(int)(Interlocked.Increment(ref next) % plans.Count)];
                using var image = EncodedImage.Open(images[p.Image].Bytes, decode);
                var plan = new CropPlan(p.ResizedWidth, p.ResizedHeight, p.X, p.Y, r, p.Flip);
                CropRunner.Run(image, plan, decode, dst, scratch);
                Interlocked.Increment(ref done);
            }
        }) { IsBackground = true }).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        double wall = clock.Elapsed.TotalSeconds, cpu = (CpuTime() - cpu0).TotalSeconds;
        return new Rate(done / wall, done / cpu);
    }

    /// <summary>The whole in-process pipeline (samples read at random, decode workers writing into the batch) at batch 32.</summary>
    private static Rate MeasurePipeline(Options opts, int r, int threads)
    {
        IReadOnlyList<string> source = opts.Folder is not null ? [opts.Folder] : opts.Shards;
        var config = new DataConfig { Source = source, Resolution = r, BatchSize = 32, DecodeWorkers = threads, Readers = 2 };
        var options = config.CreatePipelineOptions(config.LoadIndex(_ => { }), DataUse.Train);
        return Task.Run(async () =>
        {
            await using var pipeline = DataPipeline.Start(options);
            var clock = Stopwatch.StartNew();
            var cpu0 = CpuTime();
            bool measuring = false;
            long images = 0;
            await foreach (var batch in pipeline.ReadSpansAsync(0, 32))
            {
                using (batch)
                {
                    if (!measuring)
                    {
                        if (clock.Elapsed.TotalSeconds >= 0.5) { measuring = true; clock.Restart(); cpu0 = CpuTime(); }
                        continue;
                    }
                    images += batch.Count;
                    if (clock.Elapsed.TotalSeconds >= opts.Seconds) break;
                }
            }
            return new Rate(images / clock.Elapsed.TotalSeconds, images / (CpuTime() - cpu0).TotalSeconds);
        }).GetAwaiter().GetResult();
    }

    /// <summary>PIL and libjpeg versions of the given Python, or "unavailable: why".</summary>
    private static string ProbePython(string python)
    {
        try
        {
            var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import PIL, numpy; from PIL import features; print(PIL.__version__, features.version('jpg') or '?')");
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd().Trim();
            string error = p.StandardError.ReadToEnd().Trim();
            p.WaitForExit();
            if (p.ExitCode != 0) return $"unavailable: {error.Split('\n').LastOrDefault()}";
            var parts = output.Split(' ');
            return $"Pillow {parts[0]}, libjpeg(-turbo) {parts.ElementAtOrDefault(1)}";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return $"unavailable: {e.Message}";
        }
    }

    private static Rate RunPython(Options opts, string planFile, string mode, int processes, string? dump)
    {
        string script = Path.Combine(opts.RepoRoot, "bench", "pil_decode_bench.py");
        var psi = new ProcessStartInfo(opts.Python!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { script, "--plan", planFile, "--mode", mode, "--processes", processes.ToString(CultureInfo.InvariantCulture), "--seconds", opts.Seconds.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        if (dump is not null)
        {
            psi.ArgumentList.Add("--dump");
            psi.ArgumentList.Add(dump);
            psi.ArgumentList[psi.ArgumentList.IndexOf("--seconds") + 1] = "0.01";
        }
        using var process = Process.Start(psi)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{opts.Python} {script} failed ({process.ExitCode}): {stderr}");
        using var json = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        var root = json.RootElement;
        return new Rate(root.GetProperty("images_per_s").GetDouble(), root.GetProperty("images_per_cpu_s").GetDouble(), root.GetProperty("peak_rss_kb").GetInt64());
    }

    /// <summary>Our output against PIL's for the first plan of every image: exact mode must match bit for bit.</summary>
    private static string PixelCheck(Options opts, List<(string Name, byte[] Bytes)> images, List<Plan> plans, string planFile, string work, int r)
    {
        string dump = Path.Combine(work, "pil");
        RunPython(opts, planFile, "plain", 1, dump);
        int compared = 0, maxExact = 0;
        double mseDefault = 0;
        var scratch = new TransformScratch();
        var a = new byte[3 * r * r];
        var b = new byte[3 * r * r];
        for (int k = 0; k < plans.Count; k++)
        {
            string file = Path.Combine(dump, $"{k}.chw");
            if (!File.Exists(file)) continue;
            var pil = File.ReadAllBytes(file);
            var p = plans[k];
            var plan = new CropPlan(p.ResizedWidth, p.ResizedHeight, p.X, p.Y, r, p.Flip);
            using (var img = EncodedImage.Open(images[p.Image].Bytes, DecodeOptions.Default))
                CropRunner.Run(img, plan, DecodeOptions.Default with { JpegScaledDecode = false }, a, scratch);
            using (var img = EncodedImage.Open(images[p.Image].Bytes, DecodeOptions.Default))
                CropRunner.Run(img, plan, DecodeOptions.Default, b, scratch);
            for (int i = 0; i < a.Length; i++)
            {
                maxExact = Math.Max(maxExact, Math.Abs(a[i] - pil[i]));
                mseDefault += (b[i] - pil[i]) * (double)(b[i] - pil[i]);
            }
            compared++;
        }
        mseDefault /= Math.Max(1, compared) * (double)a.Length;
        double psnr = mseDefault == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mseDefault);
        return $"{compared} crops compared with PIL's: full-size mode max |difference| = {maxExact} (0 = bit-identical); " +
               $"default mode PSNR vs PIL = {psnr:F1} dB";
    }

    private static List<(string Name, byte[] Bytes)> LoadImages(Options opts)
    {
        var list = new List<(string, byte[])>();
        if (opts.Folder is not null)
        {
            foreach (var f in ImageFolder.List(opts.Folder).Where(s => s.ImageExtension is "jpg" or "jpeg"))
                list.Add((f.Key, File.ReadAllBytes(f.ImagePath)));
        }
        else
        {
            foreach (var shard in ShardSpec.Resolve(opts.Shards))
                foreach (var s in shard.Read(new ReadContext { Report = p => Console.Error.WriteLine(p) }))
                    using (s)
                        if (s.HasImage && s.ImageExtension is "jpg" or "jpeg")
                            list.Add((s.Key, s.Image.ToArray()));
        }
        if (list.Count == 0) throw new InvalidOperationException("no JPEG images found for the benchmark.");
        return list;
    }

    private static long PeakRssKb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return Process.GetCurrentProcess().PeakWorkingSet64 / 1024;
    }

    private static string Report(Options opts, List<(string Name, byte[] Bytes)> images, List<(string What, int Threads, Rate Rate)> rows, string check, long peakRss)
    {
        var sb = new StringBuilder();
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
            : "?";
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        sb.AppendLine($"# data-decode benchmark, {DateTime.Now:yyyy-MM-dd HH:mm}");
        sb.AppendLine();
        sb.AppendLine($"Machine: {cpu}, {Environment.ProcessorCount} logical cores, load average {load} at the end; .NET {Environment.Version}, " +
                      $"SkiaSharp {typeof(SkiaSharp.SKCodec).Assembly.GetName().Version}; Python: {opts.PilVersion}.");
        sb.AppendLine($"Work per image: decode JPEG → stochastic rescale (log-uniform short side in [R, min(S, 4R)]) → random {opts.Resolution}² crop → flip with p = 1/2, planar RGB out.");
        sb.AppendLine($"Images: {images.Count} JPEGs ({(opts.Folder ?? string.Join(" ", opts.Shards))}), mean {images.Average(i => i.Bytes.Length) / 1024:F0} KB; one crop plan (8 draws per image) shared by every row.");
        sb.AppendLine($"Each figure: best of {opts.Rounds} interleaved time-boxed runs of {opts.Seconds} s after a warm-up. Python rows run `{opts.Python}` on bench/pil_decode_bench.py with the same files and plan (processes = threads).");
        sb.AppendLine("images/CPU-s counts process CPU time (all threads, incl. GC; for Python the worker processes), so it is the per-core speed even when other jobs share the machine.");
        sb.AppendLine();
        sb.AppendLine("| what | threads | images/s | images/s per thread | images/CPU-s | vs PIL plain, images/s | vs PIL plain, images/CPU-s | peak RSS |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var (what, threads, rate) in rows)
        {
            var pil = rows.FirstOrDefault(x => x.What == "Python PIL (plain)" && x.Threads == threads).Rate;
            string wallRatio = pil is not null ? $"{rate.PerSecond / pil.PerSecond:F2}×" : "–";
            string cpuRatio = pil is not null ? $"{rate.PerCpuSecond / pil.PerCpuSecond:F2}×" : "–";
            string rss = rate.PeakRssKb > 0 ? $"{rate.PeakRssKb / 1024.0:F0} MB" : "";
            sb.AppendLine($"| {what} | {threads} | {rate.PerSecond:F0} | {rate.PerSecond / threads:F0} | {rate.PerCpuSecond:F0} | {wallRatio} | {cpuRatio} | {rss} |");
        }
        var one = rows.Where(x => x.Threads == opts.Threads.Min()).ToDictionary(x => x.What, x => x.Rate.PerSecond);
        var many = rows.Where(x => x.Threads == opts.Threads.Max()).ToDictionary(x => x.What, x => x.Rate.PerSecond);
        if (opts.Threads.Length > 1)
        {
            sb.AppendLine();
            int tmin = opts.Threads.Min(), tmax = opts.Threads.Max();
            sb.AppendLine($"Scaling {tmin} → {tmax} threads (ideal {tmax / (double)tmin:F1}×): " +
                          string.Join("; ", one.Keys.Where(many.ContainsKey).Select(k => $"{k} {many[k] / one[k]:F2}×")) + ".");
        }
        sb.AppendLine();
        sb.AppendLine($"Peak RSS of the C# benchmark process (all C# rows, incl. the pipeline, and the images held in memory): {peakRss / 1024.0:F0} MB; Python figures are the peak of the script and its worker processes.");
        sb.AppendLine($"Pixel check: {check}.");
        sb.AppendLine();
        sb.AppendLine("Modes: *default* decodes only the rows/columns of the JPEG the crop needs (libjpeg-turbo scanline API) and lets libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is at most half that size (margin 2); *full-size* decodes at full resolution (still windowed) and is bit-identical to PIL. PIL *draft* is PIL's own DCT-scaling shortcut (`Image.draft`, also at least 2× the target).");
        return sb.ToString();
    }

    private sealed record Options(int Resolution, int[] Threads, double Seconds, int Rounds, string? Python, string Output, string[] Shards, string? Folder, long Seed, string RepoRoot)
    {
        public string PilVersion { get; init; } = "";
    }

    private static Options ParseArgs(string[] args)
    {
        string root = FindRoot();
        int resolution = 256;
        int[] threads = [1, Environment.ProcessorCount];
        double seconds = 3;
        int rounds = 3;
        string? python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        string output = Path.Combine(root, "bench", "results");
        string[] shards = [Path.Combine(root, "samples", "shards", "*.tar")];
        string? folder = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--resolution": resolution = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--threads": threads = Next().Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).Distinct().ToArray(); break;
                case "--seconds": seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--python": python = Next(); break;
                case "--no-python": python = null; break;
                case "--output": output = Next(); break;
                case "--shards": shards = [Next()]; break;
                case "--folder": folder = Next(); break;
                default:
                    throw new ArgumentException($"unknown option {args[i]}. Options: --resolution 256 --threads 1,N --seconds 3 " +
                                                "--rounds 3 --python /usr/bin/python3 | --no-python --folder <jpegs> --shards <pattern> --output bench/results");
            }
        }
        return new Options(resolution, threads, seconds, rounds, python, output, shards, folder, 1, root);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "samples", "shards")) && Directory.Exists(Path.Combine(dir.FullName, "bench")))
                return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
