using System.Text.RegularExpressions;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Evaluation;

/// <summary>`litevae compare`: rows per report, best values marked, reference rows, notes, errors.</summary>
[Collection(CliCollection.Name)]
public sealed class CompareCommandTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static EvalReport Report(string label, long images, int resolution, double? rfid, double? lpips, double psnr, double ssim,
        string source = "shards/val-{000000..000063}.tar") => new()
    {
        Label = label,
        Checkpoint = new ReportCheckpoint($"runs/{label}/checkpoints/step-00001000", "model.safetensors", 1000, $"runs/{label}", "config.conf"),
        Model = new ReportModel(12, 6_750_000, "fp32", "cuda:0", 32, "embed_dim = 12"),
        Data = new ReportData([source], resolution, EvalReportWriter.Transform, images, null, 0, new Dictionary<string, long>(), 0),
        Metrics = new Dictionary<string, ReportMetric>
        {
            ["rfid"] = rfid is null ? new(null, "rFID (Inception-v3): weights not found", null) : new(rfid, null, null),
            ["lpips"] = lpips is null ? new(null, "LPIPS (VGG): weights not found", null) : new(lpips, null, "LPIPS v0.1, vgg"),
            ["psnr"] = new(psnr, null, null),
            ["ssim"] = new(ssim, null, null),
            ["ms_ssim"] = new(null, "images are 128 x 128; MS-SSIM needs at least 161 x 161", null),
        },
        Timing = new ReportTiming(10, 100, 8, 1, 1),
    };

    private string Write(string name, EvalReport report)
    {
        string path = _dir.File(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, report.ToJson());
        return path;
    }

    /// <summary>The cells of the table row that starts with <paramref name="label"/>.</summary>
    private static string[] Row(string output, string label)
    {
        var line = output.Split('\n').Single(l => l.StartsWith(label + " ", StringComparison.Ordinal));
        return Regex.Split(line.Trim(), @"\s{2,}");
    }

    [Fact]
    public void RunsSideBySideWithTheBestValuesMarked()
    {
        var a = Write("a.json", Report("run-a@1000", 50000, 256, 1.25, 0.081, 29.38, 0.851));
        var b = Write("b.json", Report("run-b@1000", 50000, 256, 0.30, 0.080, 29.12, 0.84));
        var r = CliRunner.Run("compare", a, b);
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(["run-a@1000", "1000", "50000", "256", "1.250", "0.0810", "29.38*", "0.8510*", "n/a"], Row(r.Out, "run-a@1000"));
        Assert.Equal(["run-b@1000", "1000", "50000", "256", "0.300*", "0.0800*", "29.12", "0.8400", "n/a"], Row(r.Out, "run-b@1000"));
        Assert.DoesNotContain("[paper", r.Out);
        Assert.DoesNotContain("different numbers of images", r.Out);
    }

    [Fact]
    public void ReferenceRowsAreTheSpecNumbersLabelledBySource()
    {
        var a = Write("a.json", Report("mine", 50000, 256, 0.5, 0.07, 30.0, 0.87));
        var r = CliRunner.Run("compare", a, "--reference");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(["[paper Table 1] LiteVAE-B, ImageNet 256, 32x32x12", "-", "50000", "256", "0.23", "0.072", "30.91", "0.88", "-"],
            Row(r.Out, "[paper Table 1] LiteVAE-B, ImageNet 256, 32x32x12"));
        Assert.Equal(["[paper Table 1] VAE, ImageNet 128, 16x16x12", "-", "50000", "128", "0.94", "0.069", "29.25", "0.86", "-"],
            Row(r.Out, "[paper Table 1] VAE, ImageNet 128, 16x16x12"));
        Assert.Equal(["[open-litevae README] B5 (UNetGAN-L, HF olitevaeB_im_f8c12)", "-", "50000", "256", "0.24", "0.084", "28.74", "0.84", "-"],
            Row(r.Out, "[open-litevae README] B5 (UNetGAN-L, HF olitevaeB_im_f8c12)"));
        Assert.Contains("a 128 px result", r.Out); // the README's "paper number" rows carry the spec's caveat
        Assert.Equal(8, r.Out.Split('\n').Count(l => l.StartsWith("[paper Table 1]", StringComparison.Ordinal)));
        Assert.Equal(12, r.Out.Split('\n').Count(l => l.StartsWith("[open-litevae README]", StringComparison.Ordinal)));
    }

    [Fact]
    public void IncomparableReportsGetNotes()
    {
        var a = Write("runs/x/eval/step-00000200.json", Report("small@200", 10, 64, 3.5, null, 15.8, 0.43, "samples/shards/eval-000000.tar"));
        var b = Write("runs/x/eval/step-00000400.json", Report("full@400", 50000, 256, 0.9, 0.08, 28.0, 0.8));
        var r = CliRunner.Run("compare", Path.GetDirectoryName(a)!); // a folder stands for its reports
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Contains("different numbers of images", r.Out);
        Assert.Contains("different resolutions", r.Out);
        Assert.Contains("different data", r.Out);
        Assert.Contains("small@200: LPIPS unavailable (LPIPS (VGG): weights not found)", r.Out);
        Assert.Equal("n/a", Row(r.Out, "small@200")[5]);
        _ = b;
    }

    [Fact]
    public void MarkdownTable()
    {
        var a = Write("a.json", Report("a|b", 100, 256, null, null, 20.5, 0.5));
        var r = CliRunner.Run("compare", a, "--markdown");
        Assert.True(r.ExitCode == 0, r.Error);
        var lines = r.Out.Split('\n');
        Assert.Equal("| run | step | images | res | rFID | LPIPS | PSNR | SSIM | MS-SSIM |", lines[0]);
        Assert.Equal("|---|---|---:|---:|---:|---:|---:|---:|---:|", lines[1]);
        Assert.Equal(@"| a\|b | 1000 | 100 | 256 | n/a | n/a | 20.50 | 0.5000 | n/a |", lines[2]);
    }

    [Fact]
    public void ABadReportIsOneClearError()
    {
        string bad = _dir.File("bad.json");
        File.WriteAllText(bad, "{ \"format\": \"something-else\" }");
        var r = CliRunner.Run("compare", bad);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.Contains(bad, r.ErrorLines[0]);
        Assert.Contains("not an evaluation report", r.ErrorLines[0]);
        r = CliRunner.Run("compare", _dir.File("none.json"));
        Assert.Contains("not found", Assert.Single(r.ErrorLines));
    }

    [Fact]
    public void ReportJsonRoundTripsIncludingInfinitePsnr()
    {
        var report = Report("x", 3, 32, null, null, double.PositiveInfinity, 1.0);
        string path = Write("inf.json", report);
        Assert.Contains("\"Infinity\"", File.ReadAllText(path));
        var back = EvalReport.Read(path);
        Assert.True(double.IsPositiveInfinity(back.Metrics["psnr"].Value!.Value));
        Assert.Equal(report.Metrics.Keys, back.Metrics.Keys);
        Assert.Equal(report.Data.Source, back.Data.Source);
        var r = CliRunner.Run("compare", path);
        Assert.Equal("inf", Row(r.Out, "x")[6]);
    }
}
