using System.Diagnostics;
using System.Globalization;
using LiteVae.Data.Imaging;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Evaluation;

/// <summary>
/// The evaluation inside `litevae train` is the `litevae eval` job: held-out reports at step 0 and at every
/// checkpoint in the run's eval/ and tb/, the PSNR gain printed at the end, and the same numbers as a
/// standalone `litevae eval` of the same checkpoint on the same images.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class TrainEvalTests : IDisposable
{
    private const int Res = 32;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Code, string Output) Train(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "litevae.dll"));
        psi.ArgumentList.Add("train");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(600_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"litevae train did not finish in 10 minutes: {stdout.Result}{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void TrainEvaluatesHeldOutImagesAtStepZeroAndEveryCheckpointWithTheEvalJob()
    {
        string run = _dir.File("run"), noWeights = _dir.File("no-weights");
        Directory.CreateDirectory(noWeights);
        var (code, output) = Train([
            "--config", "configs/quickstart.conf", "--run-dir", run, "--device", "cpu", "--max-steps", "2", "--weights-dir", noWeights,
            "--set", $"data.resolution={Res}", "--set", "data.batch-size=4", "--set", "data.decode-workers=1",
            "--set", $"eval-data.resolution={Res}", "--set", "eval.images=6", "--set", "eval.grid-images=3",
            "--set", "checkpoint.every-steps=1", "--set", "checkpoint.keep-last=10", "--set", "trainer.log-every=1",
        ]);
        Assert.True(code == 0, output);

        // The start (step 0) and the last checkpoint are evaluated; step 1's evaluation may be superseded by step 2's
        // while it waits for the eval node (only the newest checkpoint waits).
        string eval = Path.Combine(run, "eval");
        var reports = new Dictionary<long, EvalReport>();
        foreach (long step in new long[] { 0, 2 })
        {
            string stem = Path.Combine(eval, $"step-{step:D8}");
            var r = reports[step] = EvalReport.Read(stem + ".json");
            Assert.Equal(step, r.Checkpoint.Step);
            Assert.Equal(6, r.Data.Images);
            Assert.Equal(Res, r.Data.Resolution);
            Assert.Contains("weight", r.Metrics["lpips"].Unavailable); // no LPIPS weight file in --weights
            Assert.Contains("eval.rfid", r.Metrics["rfid"].Unavailable);
            // Grid: 3 columns, originals over reconstructions; CSV: the 6 images, worst (lowest PSNR) first.
            var grid = ImageFile.Read(stem + ".png");
            Assert.Equal((3 * Res + 2 * 4, 2 * Res + 4), (grid.Width, grid.Height));
            Assert.True(File.Exists(stem + "-worst.png"));
            var psnrs = File.ReadAllLines(stem + ".csv").Skip(1).Select(l => double.Parse(l.Split(',')[4], CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(6, psnrs.Count);
            Assert.Equal(psnrs.OrderBy(p => p), psnrs);
            Assert.Equal(psnrs.Average(), r.Metrics["psnr"].Value!.Value, 9);
        }
        // The quickstart evaluates its EMA weights (eval.use-ema).
        Assert.EndsWith(Path.Combine("step-00000000", "ema.safetensors"), reports[0].Checkpoint.Weights);
        Assert.EndsWith(Path.Combine("step-00000002", "ema.safetensors"), reports[2].Checkpoint.Weights);
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(run, "tb"), "events.out.tfevents.*"));
        string gain = string.Create(CultureInfo.InvariantCulture,
            $"held-out PSNR {reports[0].Metrics["psnr"].Value:0.00} dB at step 0 → {reports[2].Metrics["psnr"].Value:0.00} dB at step 2");
        Assert.Contains(gain, output);

        // The standalone eval of the step-2 checkpoint on the same images gives the same per-image numbers.
        string json = _dir.File("standalone/report.json");
        var s = CliRunner.Run("eval", "--checkpoint", Path.Combine(run, "checkpoints", "step-00000002"), "--data", EvalTestKit.EvalShard,
            "--resolution", $"{Res}", "--batch", "10", "--limit", "6", "--device", "cpu", "--weights-dir", noWeights, "--no-rfid", "--ema", "--json", json);
        Assert.True(s.ExitCode == 0, s.Error);
        var standalone = EvalReport.Read(json);
        Assert.Equal(reports[2].Metrics["psnr"].Value!.Value, standalone.Metrics["psnr"].Value!.Value, 9);
        Assert.Equal(reports[2].Metrics["ssim"].Value!.Value, standalone.Metrics["ssim"].Value!.Value, 9);
        static IEnumerable<string> WithoutShard(string csv) => File.ReadAllLines(csv).Select(l => string.Join(',', l.Split(',').Where((_, i) => i != 2)));
        Assert.Equal(WithoutShard(Path.Combine(eval, "step-00000002.csv")), WithoutShard(Path.ChangeExtension(json, ".csv")));
    }

    [Fact]
    public void TheEvalVerbSaysWhichOptionsBelongToWhichMode()
    {
        var r = CliRunner.Run("eval", "--cluster", "127.0.0.1:1", "--resolution", "64");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: --resolution applies to a standalone evaluation only", r.Error.Trim());
        r = CliRunner.Run("eval", "--checkpoint", "x", "--wait");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: --wait needs --cluster host:port", r.Error.Trim());
        r = CliRunner.Run("eval", "--data", "x");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: give --checkpoint", r.Error.Trim());
        r = CliRunner.Run("eval", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("on a running cluster", r.Out);
        Assert.Contains("--cluster", r.Out);
        Assert.Contains("--limit", r.Out);
    }
}
