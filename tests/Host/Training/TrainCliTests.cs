using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LiteVae.Host.Tests.Support;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Training;

/// <summary>
/// `litevae train` as a user runs it: a child process (so it can be killed with SIGKILL), working in
/// the repository root on the bundled sample shards, with a tiny model (quickstart at 32 px).
/// </summary>
public sealed partial class TrainCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-train-cli-" + Guid.NewGuid().ToString("N"));

    public TrainCliTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Quickstart shrunk for tests: 32 px, batch 4, no held-out evaluation, a checkpoint per step.</summary>
    private static readonly string[] Tiny =
    [
        "--config", "configs/quickstart.conf",
        "--set", "data.resolution=32", "--set", "data.batch-size=4", "--set", "data.decode-workers=1",
        "--set", "eval.images=0", "--set", "checkpoint.every-steps=1", "--set", "checkpoint.keep-last=10",
        "--set", "trainer.log-every=1", "--device", "cpu",
    ];

    private static ProcessStartInfo Cli(IEnumerable<string> args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "litevae.dll");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("train");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        return psi;
    }

    private static (int Code, string Output) Run(IEnumerable<string> args, int timeoutSeconds = 600)
    {
        using var p = Process.Start(Cli(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"litevae train did not finish in {timeoutSeconds} s: {stdout.Result}{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static Dictionary<string, byte[]> TensorBytes(string file) =>
        Safetensors.Load(file).ToDictionary(kv => kv.Key, kv => kv.Value.bytes.ToArray());

    [Fact]
    public void KillingTheProcessDuringACheckpointWriteLeavesThePreviousCheckpointIntact()
    {
        string run = Path.Combine(_dir, "run");
        // Every checkpoint file takes 1.5 s to "write", so the test can kill the process inside step 2's write.
        using var p = Process.Start(Cli([.. Tiny, "--max-steps", "3", "--run-dir", run, "--debug-checkpoint-file-delay-ms", "1500"]))!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        string ckpts = Path.Combine(run, "checkpoints");
        var deadline = DateTime.UtcNow.AddMinutes(5);
        string? partial = null;
        while (partial is null && DateTime.UtcNow < deadline && !p.HasExited)
        {
            Thread.Sleep(50);
            if (!Directory.Exists(Path.Combine(ckpts, "step-00000001"))) continue;
            partial = Directory.Exists(ckpts)
                ? Directory.EnumerateDirectories(ckpts, ".tmp-step-00000002-*").FirstOrDefault(d => Directory.EnumerateFiles(d).Any())
                : null;
        }
        Assert.NotNull(partial);
        p.Kill(); // SIGKILL: no finally blocks, no flushing
        p.WaitForExit();

        // The half-written step 2 is not a checkpoint; last still points at the complete step 1.
        Assert.Equal([1L], CheckpointStore.List(ckpts).Select(c => c.Step));
        var ck = CheckpointDir.Open(run);
        Assert.Equal(1, ck.State.Step);
        Assert.NotNull(ck.State.DataPosition);
        var model = Safetensors.Load(Path.Combine(ckpts, "last", "model.safetensors"));
        Assert.Contains("decoder.conv_out.weight", model.Keys);

        // And the run resumes from it, then finishes normally.
        var (code, output) = Run(["--resume", run]);
        Assert.True(code == 0, output);
        Assert.Contains("resumed", output);
        Assert.Equal(3, CheckpointDir.Open(run).State.Step);
        Assert.Empty(Directory.EnumerateFileSystemEntries(ckpts, ".tmp-*"));
        // Step 2 ran twice (before the kill, and after resuming from step 1); the audit counts the step the weights kept.
        var audit = CliRunner.Run("audit", run);
        Assert.True(audit.ExitCode == 0, audit.Out + audit.Error);
        Assert.Contains("3 steps on record, 12 samples trained, 0 skipped", audit.Out);
        Assert.Contains("OK: every sample the run reached was trained exactly once", audit.Out);

        // tb/ (evaluation off) holds the training curves as one stream: steps 1-3 once each, though step 2 ran twice.
        var points = TensorBoardEvents.Read(Path.Combine(run, "tb"));
        foreach (var tag in new[] { "g/total", "g/l1", "g/kl", "g/grad_norm", "lr/generator", "train/images_per_second", "train/data_wait",
                     "train/step_seconds", "train/skipped_steps" })
            Assert.Equal([1L, 2, 3], TensorBoardEvents.Curve(points, tag).Keys);
        Assert.All(TensorBoardEvents.Curve(points, "train/skipped_steps").Values, v => Assert.Equal(0, v));
        Assert.DoesNotContain(points, p => p.Tag.StartsWith("eval/", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_samples_are_skipped_counted_and_listed_and_the_audit_accounts_for_every_sample()
    {
        // The bundled training shards, one shard of files that are not images, and one cut short mid-sample.
        Directory.CreateDirectory(_dir);
        string broken = Path.Combine(_dir, "broken-000000.tar"), cut = Path.Combine(_dir, "cut-000000.tar");
        using (var tar = new System.Formats.Tar.TarWriter(File.Create(broken)))
            for (int i = 0; i < 3; i++)
                tar.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"broken{i}.jpg")
                {
                    DataStream = new MemoryStream(System.Text.Encoding.ASCII.GetBytes($"not a JPEG {i}")),
                });
        byte[] whole = File.ReadAllBytes(Path.Combine(RepoPaths.Root, "samples", "shards", "train-000001.tar"));
        File.WriteAllBytes(cut, whole[..(whole.Length * 6 / 10)]);
        string shards = Path.Combine(RepoPaths.Root, "samples", "shards", "train-{000000..000003}.tar");
        string run = Path.Combine(_dir, "bad");
        var (code, output) = Run([.. Tiny, "--set", $"data.source=[\"{shards}\", \"{broken}\", \"{cut}\"]", "--set", "data.max-bad-fraction=0.5",
            "--max-steps", "30", "--run-dir", run]);
        Assert.True(code == 0, output);
        var skipped = Regex.Match(output, @"(\d+) of (\d+) samples were skipped as unreadable \(([^)]*)\); shard, key and reason of each: (\S+)");
        Assert.True(skipped.Success, output);
        Assert.Contains("not-an-image", skipped.Groups[3].Value);
        Assert.Contains("truncated-shard", skipped.Groups[3].Value);
        string list = skipped.Groups[4].Value;
        Assert.Equal(Path.Combine(run, "audit", "skipped.tsv"), list);
        var rows = File.ReadAllLines(list).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.Contains(rows, r => r[2] == broken && r[3] == "broken0" && r[4] == "not-an-image");
        Assert.Contains(rows, r => r[2] == cut && r[4] == "truncated-shard");

        var audit = CliRunner.Run("audit", run, "--json", Path.Combine(_dir, "audit.json"));
        Assert.True(audit.ExitCode == 0, audit.Out + audit.Error);
        Assert.Contains("OK: every sample the run reached", audit.Out);
        Assert.Matches(@"whole run\s+\d+\s+\d+\s+0\s+0\s+[1-9]\d*\s+0", audit.Out);   // some bad, none twice, never or ahead

        // A sample on record twice (what a defect would leave) is caught.
        string log = Path.Combine(run, "audit", "trained.bin");
        File.AppendAllBytes(log, File.ReadAllBytes(log)[..24]);
        audit = CliRunner.Run("audit", run);
        Assert.Equal(1, audit.ExitCode);
        Assert.Contains("DEFECT: 1 sample(s) trained more than once", audit.Out);
    }

    [Fact]
    public void AResumedRunEndsWithTheSameWeightsAndLossesAsAnUninterruptedOne()
    {
        string straight = Path.Combine(_dir, "straight"), split = Path.Combine(_dir, "split");
        var (c1, out1) = Run([.. Tiny, "--max-steps", "4", "--run-dir", straight]);
        Assert.True(c1 == 0, out1);
        var (c2, out2) = Run([.. Tiny, "--max-steps", "2", "--run-dir", split]);
        Assert.True(c2 == 0, out2);
        var (c3, out3) = Run(["--resume", split, "--max-steps", "4"]);
        Assert.True(c3 == 0, out3);

        var a = CheckpointDir.Open(straight);
        var b = CheckpointDir.Open(split);
        Assert.Equal(4, a.State.Step);
        Assert.Equal(4, b.State.Step);
        Assert.Equal(a.State.DataPosition, b.State.DataPosition);
        foreach (var file in new[] { "model.safetensors", "optimizer.safetensors" })
        {
            var x = TensorBytes(Path.Combine(a.Path, file));
            var y = TensorBytes(Path.Combine(b.Path, file));
            Assert.Equal(x.Keys.Order(), y.Keys.Order());
            foreach (var key in x.Keys)
                Assert.True(x[key].AsSpan().SequenceEqual(y[key]), $"{file}: {key} differs after resume");
        }
        // Steps 3 and 4 logged the same losses in both runs, on the console and in tb/ (one stream per run).
        Assert.Equal(Losses(out1).Where(l => l.Step > 2), Losses(out3));
        var straightTb = TensorBoardEvents.Read(Path.Combine(straight, "tb"));
        var splitTb = TensorBoardEvents.Read(Path.Combine(split, "tb"));
        var lossTags = straightTb.Select(p => p.Tag).Where(t => t.StartsWith("g/", StringComparison.Ordinal)).Distinct().ToList();
        Assert.Contains("g/total", lossTags);
        foreach (var tag in lossTags)
            Assert.Equal(TensorBoardEvents.Curve(straightTb, tag), TensorBoardEvents.Curve(splitTb, tag));
    }

    private static List<(int Step, string Line)> Losses(string output) =>
        StepLine().Matches(output).Select(m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value)).ToList();

    // "step 3/4 (75.0%) | 5.1 img/s | l1 0.3327 kl 0.4235 loss 0.3972 | data wait ..." → the loss part
    [GeneratedRegex(@"step\s+(\d+)/\d+ \([^)]*\) \| [^|]* \| ([^|]*) \|")]
    private static partial Regex StepLine();

    [Fact]
    public void ConflictingOrMissingOptionsAreOneLineErrors()
    {
        var (code, output) = Run(["--resume", _dir, "--config", "configs/quickstart.conf"]);
        Assert.Equal(1, code);
        Assert.StartsWith("error: --resume continues a run with its own config.conf", output.Trim());
        (code, output) = Run(["--resume", _dir]);
        Assert.Equal(1, code);
        Assert.Contains("not a run directory", output);
        (code, output) = Run([]);
        Assert.Equal(1, code);
        Assert.Contains("give --config", output);
        File.WriteAllText(Path.Combine(_dir, "config.conf"), "");
        (code, output) = Run(["--resume", _dir]);
        Assert.Equal(1, code);
        Assert.Contains("has no complete checkpoint yet", output);
    }

    /// <summary>
    /// A trainer that cannot start (here: CUDA asked for on a machine without it) ends `train` with the
    /// reason and exit code 1, instead of the backoff supervisor retrying it forever.
    /// </summary>
    [Fact]
    public void A_trainer_that_cannot_start_ends_the_run_with_its_reason()
    {
        if (TorchSharp.torch.cuda.is_available()) return; // the failure needs a machine without CUDA
        var args = Tiny.Where(a => a != "cpu" && a != "--device").Concat(["--device", "cuda", "--run-dir", Path.Combine(_dir, "nocuda")]);
        var (code, output) = Run(args, timeoutSeconds: 180);
        Assert.Equal(1, code);
        Assert.Contains("the trainer could not start", output);
        Assert.Contains("CUDA", output);
    }

    [Fact]
    public void A_training_set_without_one_readable_image_stops_the_run_with_its_reason()
    {
        // A real tar shard whose every member is named like a JPEG and is not one.
        Directory.CreateDirectory(_dir);
        string shard = Path.Combine(_dir, "broken-000000.tar");
        using (var tar = new System.Formats.Tar.TarWriter(File.Create(shard)))
            for (int i = 0; i < 6; i++)
            {
                var entry = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"sample{i:D4}.jpg")
                {
                    DataStream = new MemoryStream(System.Text.Encoding.ASCII.GetBytes($"not a JPEG {i}")),
                };
                tar.WriteEntry(entry);
            }
        var args = Tiny.Concat(["--set", $"data.source=\"{shard}\"", "--run-dir", Path.Combine(_dir, "broken")]);
        var (code, output) = Run(args, timeoutSeconds: 180);
        Assert.Equal(1, code);
        Assert.Matches(@"error: the run stopped at step 0: data: \d+ samples in a row \(a whole epoch of 6\) without one readable image \(not-an-image \d+\)", output);
        Assert.Matches(@"shard \S*broken-000000.tar key sample\d{4}: no decoder recognises the data", output);
        Assert.Contains("litevae shards check", output);
    }

    /// <summary>A recipe with the LPIPS term and no weight files refuses to start, saying how to get them.</summary>
    [Fact]
    public void A_recipe_asking_for_lpips_without_its_weights_refuses_to_start()
    {
        string empty = Path.Combine(_dir, "no-weights");
        Directory.CreateDirectory(empty);
        var args = Tiny.Concat(["--set", "loss.perceptual=vgg", "--set", "loss.perceptual-weight=1.0", "--weights-dir", empty,
            "--run-dir", Path.Combine(_dir, "nolpips")]);
        var (code, output) = Run(args, timeoutSeconds: 180);
        Assert.Equal(1, code);
        Assert.Contains("the perceptual loss (loss.perceptual = vgg) needs its weight files", output);
        Assert.Contains("litevae weights list", output);
        Assert.Contains("--set loss.perceptual=none", output);
        Assert.False(Directory.Exists(Path.Combine(_dir, "nolpips", "checkpoints", "step-00000001")), "no step may be trained");
    }

    /// <summary>The quickstart as documented: a clear gain in held-out PSNR (minutes on a CPU).</summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void QuickstartClearlyImprovesHeldOutPsnr()
    {
        string run = Path.Combine(_dir, "quickstart");
        var (code, output) = Run(["--config", "configs/quickstart.conf", "--run-dir", run], timeoutSeconds: 3600);
        Assert.True(code == 0, output);
        var m = Regex.Match(output, @"held-out PSNR ([\d.]+) dB at step 0 → ([\d.]+) dB at step (\d+)");
        Assert.True(m.Success, output);
        double before = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), after = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        // The quickstart's promise (configs/quickstart.conf): at least 20 dB on the held-out photos at 128².
        // Measured 10.92 → 20.50 dB; the steps, data order and seeds are fixed, so load does not change it.
        Assert.True(after >= 20.0 && after > before + 3, $"held-out PSNR {before} → {after} dB");
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "last", "model.safetensors")));
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(run, "eval"), "*.png"));
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(run, "tb"), "events.out.tfevents.*"));
    }
}
