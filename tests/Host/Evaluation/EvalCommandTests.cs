using System.Globalization;
using System.Text.Json;
using LiteVae.Data.Imaging;
using LiteVae.Host.Config;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Tests.Support;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using static TorchSharp.torch;

namespace LiteVae.Host.Tests.Evaluation;

/// <summary>`litevae eval` end to end on the bundled held-out photos with a tiny model, and its one-line errors.</summary>
[Collection(CliCollection.Name)]
public sealed class EvalCommandTests : IDisposable
{
    private const int Res = 64;
    private readonly EvalTestKit _kit = new();
    private readonly string _noWeights;

    public EvalCommandTests()
    {
        _noWeights = _kit.Dir.File("no-weights");
        Directory.CreateDirectory(_noWeights);
    }

    public void Dispose() => _kit.Dispose();

    private string[] Eval(params string[] rest) =>
        ["eval", "--checkpoint", _kit.Weights, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--resolution", $"{Res}",
         "--device", "cpu", "--batch", "10", "--weights-dir", _noWeights, .. rest];

    private static Dictionary<string, string[]> CsvByKey(string csv, out List<string[]> rows)
    {
        var lines = File.ReadAllLines(csv);
        Assert.Equal("rank,index,shard,key,psnr,ssim,ms_ssim,lpips", lines[0]);
        rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        return rows.ToDictionary(r => r[3]);
    }

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    [Fact]
    public void ReportsEqualMetricsComputedDirectlyOnTheSameImages()
    {
        string json = _kit.Dir.File("out/report.json");
        var r = CliRunner.Run(Eval("--json", json, "--grid", "4"));
        Assert.True(r.ExitCode == 0, r.Error);

        // Independent path: the same held-out images through the data pipeline, decode(mean) directly, a fresh MetricSet.
        var images = EvalTestKit.ReadShard(Res);
        Assert.Equal(10, images.Count);
        using var originals = EvalTestKit.Stack(images.Select(i => i.Pixels), Res);
        using var reconstructions = _kit.Reconstruct(originals);
        using var direct = new MetricSet(Availability<Lpips>.Unavailable("-"), Availability<FidInceptionV3>.Unavailable("-"));
        direct.Add(originals, reconstructions);
        var summary = direct.Summarize();

        var report = EvalReport.Read(json);
        Assert.Equal(10, report.Data.Images);
        Assert.Equal(Res, report.Data.Resolution);
        Assert.Equal(0, report.Data.BadSamples);
        Assert.Equal(summary[MetricSet.PsnrName].Value!.Value, report.Metrics["psnr"].Value!.Value, 9);
        Assert.Equal(summary[MetricSet.SsimName].Value!.Value, report.Metrics["ssim"].Value!.Value, 9);
        Assert.True(report.Timing.ImagesPerSecond > 0);
        Assert.Equal(_kit.Model.parameters().Sum(p => p.numel()), report.Model.Parameters);

        // Per-image CSV: every image once, by its shard key, worst (lowest PSNR) first, values equal the direct rows.
        var byKey = CsvByKey(Path.Combine(Path.GetDirectoryName(json)!, report.Files!.PerImageCsv!), out var rows);
        Assert.Equal(images.Select(i => i.Key).Order(), byKey.Keys.Order());
        var psnrs = rows.Select(row => D(row[4])).ToList();
        Assert.Equal(psnrs.OrderBy(p => p), psnrs);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => i.ToString(CultureInfo.InvariantCulture)), rows.Select(row => row[0]));
        for (int i = 0; i < images.Count; i++)
        {
            var row = byKey[images[i].Key];
            Assert.Equal(direct.Rows[i].Psnr, D(row[4]), 9);
            Assert.Equal(direct.Rows[i].Ssim, D(row[5]), 9);
            Assert.Equal("", row[6]); // MS-SSIM needs 161 px
            Assert.Equal("", row[7]); // no LPIPS weights
        }

        // Grid: 4 columns of originals over reconstructions; the first cell is the first held-out image.
        var grid = ImageFile.Read(Path.Combine(Path.GetDirectoryName(json)!, report.Files.Grid!));
        Assert.Equal((4 * Res + 3 * 4, 2 * Res + 4), (grid.Width, grid.Height));
        AssertCell(grid, 0, 0, images[0].Pixels);
        using var rec0 = reconstructions[0].contiguous();
        AssertCell(grid, 0, Res + 4, rec0.bytes.ToArray());
        // Worst grid: its first column is the CSV's first row.
        var worst = ImageFile.Read(Path.Combine(Path.GetDirectoryName(json)!, report.Files.WorstGrid!));
        AssertCell(worst, 0, 0, images.Single(i => i.Key == rows[0][3]).Pixels);

        // The table on stdout.
        Assert.Contains("PSNR", r.Out);
        Assert.Contains(report.Metrics["psnr"].Value!.Value.ToString("0.00", CultureInfo.InvariantCulture) + " dB", r.Out);
        Assert.Contains("10 images at 64 x 64", r.Out);
    }

    /// <summary>The cell at (left, top) of an interleaved RGB grid equals a planar 3 x Res x Res image.</summary>
    private static void AssertCell(RgbImage grid, int left, int top, byte[] planar)
    {
        int plane = Res * Res;
        for (int y = 0; y < Res; y += 7)
            for (int x = 0; x < Res; x += 5)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(planar[c * plane + y * Res + x], grid.Pixels[((top + y) * grid.Width + left + x) * 3 + c]);
    }

    [Fact]
    public void MissingWeightFilesMakeLpipsAndRfidUnavailableWithTheReasonInTableAndJson()
    {
        string json = _kit.Dir.File("report.json");
        var r = CliRunner.Run(Eval("--json", json));
        Assert.True(r.ExitCode == 0, r.Error);
        var report = EvalReport.Read(json);
        foreach (var (name, file) in new[] { ("lpips", "vgg16-397923af.pth"), ("rfid", "pt_inception-2015-12-05-6726825d.pth") })
        {
            Assert.Null(report.Metrics[name].Value);
            Assert.Contains(file, report.Metrics[name].Unavailable);
            Assert.Contains(_noWeights, report.Metrics[name].Unavailable);
        }
        Assert.Contains("161", report.Metrics["ms_ssim"].Unavailable);
        var lines = r.Out.Split('\n');
        Assert.Contains(lines, l => l.Contains("LPIPS") && l.Contains("n/a") && l.Contains("unavailable: LPIPS (VGG)") && l.Contains("vgg16-397923af.pth"));
        Assert.Contains(lines, l => l.Contains("rFID") && l.Contains("n/a") && l.Contains("unavailable: rFID") && l.Contains("pt_inception"));
        // Raw JSON: null values, not zeros.
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("metrics").GetProperty("lpips").GetProperty("value").ValueKind);
    }

    [Fact]
    public void WithLpipsWeightsTheWorstImagesAreTheHighestLpips()
    {
        // Random AlexNet-LPIPS weights in the official file layout: the plumbing is real, the numbers are not LPIPS.
        string weights = _kit.Dir.File("lpips-weights");
        Directory.CreateDirectory(weights);
        manual_seed(3);
        using var lpips = new Lpips(LpipsNet.Alex);
        var sd = lpips.state_dict();
        Safetensors.Save(Path.Combine(weights, "alexnet-owt-7be5be79.safetensors"),
            sd.Where(kv => kv.Key.StartsWith("net.", StringComparison.Ordinal)).Select(kv => new KeyValuePair<string, Tensor>(kv.Key[4..], kv.Value)));
        Safetensors.Save(Path.Combine(weights, "lpips-v0.1-alex.safetensors"), sd.Where(kv => kv.Key.StartsWith("lin", StringComparison.Ordinal)));

        string json = _kit.Dir.File("lpips.json");
        var r = CliRunner.Run(Eval("--json", json, "--lpips", "alex", "--no-rfid").Select(a => a == _noWeights ? weights : a).ToArray());
        Assert.True(r.ExitCode == 0, r.Error);
        var report = EvalReport.Read(json);

        var images = EvalTestKit.ReadShard(Res);
        using var originals = EvalTestKit.Stack(images.Select(i => i.Pixels), Res);
        using var reconstructions = _kit.Reconstruct(originals);
        using var direct = new MetricSet(Availability<Lpips>.Available(lpips), Availability<FidInceptionV3>.Unavailable("-"));
        direct.Add(originals, reconstructions);
        Assert.Equal(direct.Summarize()[MetricSet.LpipsName].Value!.Value, report.Metrics["lpips"].Value!.Value, 6);
        Assert.Contains("alex", report.Metrics["lpips"].Note);
        Assert.Contains("--no-rfid", report.Metrics["rfid"].Unavailable);

        CsvByKey(_kit.Dir.File("lpips.csv"), out var rows);
        var values = rows.Select(row => D(row[7])).ToList();
        Assert.Equal(values.OrderByDescending(v => v), values);
        Assert.Equal(direct.Rows.Max(x => x.Lpips!.Value), values[0], 6);
        Assert.Contains("worst images (by LPIPS)", r.Out);
    }

    [Fact]
    public void LimitEvaluatesTheFirstImagesInShardOrder()
    {
        string json = _kit.Dir.File("limit.json");
        var r = CliRunner.Run(Eval("--json", json, "--limit", "3").Select(a => a == "10" ? "2" : a).ToArray());
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(3, EvalReport.Read(json).Data.Images);
        CsvByKey(_kit.Dir.File("limit.csv"), out var rows);
        Assert.Equal(EvalTestKit.ReadShard(Res).Take(3).Select(i => i.Key).Order(), rows.Select(row => row[3]).Order());
        Assert.Contains("(--limit 3)", r.Out);
    }

    private static void AssertOneLineError(CliRunner.Result r, params string[] fragments)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.StartsWith("error: ", r.ErrorLines[0]);
        foreach (var f in fragments)
            Assert.Contains(f, r.ErrorLines[0]);
        Assert.DoesNotContain("   at ", r.Error);
    }

    [Fact]
    public void ACheckpointOfAnotherPresetIsOneClearError()
    {
        // Same family, other widths: every key exists but many shapes differ.
        string otherConf = _kit.Dir.File("other.conf");
        File.WriteAllText(otherConf, EvalTestKit.TinyConf.Replace("extractor_channels = 8", "extractor_channels = 16").Replace("embed_dim = 4", "embed_dim = 8"));
        using var other = new LiteAutoencoder(ModelConfigBinder.Bind(HoconFile.Load(otherConf)));
        string otherWeights = _kit.Dir.File("other.safetensors");
        Safetensors.Save(otherWeights, other.state_dict());
        var r = CliRunner.Run(["eval", "--checkpoint", otherWeights, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--device", "cpu", "--weights-dir", _noWeights]);
        AssertOneLineError(r, otherWeights, "does not match the model configuration, nothing was loaded", "has shape", "another model configuration", _kit.Conf);
    }

    [Fact]
    public void APickleIsRefusedUnread()
    {
        // The eval path loads weights through the same guard as training and inference: a torch.save
        // file is never unpickled, whatever its name.
        string pickle = _kit.Dir.File("weights.pth");
        File.WriteAllBytes(pickle, [0x80, 0x02, (byte)'c', (byte)'o', (byte)'s', (byte)'\n']);
        var r = CliRunner.Run(["eval", "--checkpoint", pickle, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--device", "cpu", "--weights-dir", _noWeights]);
        AssertOneLineError(r, pickle, "refused", "pickle");
        string renamed = _kit.Dir.File("renamed.safetensors");
        File.Copy(pickle, renamed);
        r = CliRunner.Run(["eval", "--checkpoint", renamed, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--device", "cpu", "--weights-dir", _noWeights]);
        AssertOneLineError(r, renamed, "refused", "pickle stream");
    }

    [Fact]
    public void ACorruptCheckpointIsOneClearError()
    {
        string corrupt = _kit.Dir.File("corrupt.safetensors");
        var bytes = File.ReadAllBytes(_kit.Weights);
        File.WriteAllBytes(corrupt, bytes.AsSpan(0, bytes.Length / 2).ToArray()); // cut short, as by an interrupted copy
        var r = CliRunner.Run(["eval", "--checkpoint", corrupt, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--device", "cpu", "--weights-dir", _noWeights]);
        AssertOneLineError(r, corrupt, "damaged");

        File.WriteAllText(corrupt, "not a safetensors file at all");
        r = CliRunner.Run(["eval", "--checkpoint", corrupt, "--model", _kit.Conf, "--data", EvalTestKit.EvalShard, "--device", "cpu", "--weights-dir", _noWeights]);
        AssertOneLineError(r, corrupt, "damaged");
    }

    [Fact]
    public void DataWithoutImagesIsOneClearError()
    {
        string empty = _kit.Dir.File("empty-folder");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "readme.txt"), "no images here");
        var r = CliRunner.Run(Eval().Select(a => a == EvalTestKit.EvalShard ? empty : a).ToArray());
        AssertOneLineError(r, empty, "no images");

        string tar = _kit.TarWithoutImages();
        r = CliRunner.Run(Eval().Select(a => a == EvalTestKit.EvalShard ? tar : a).ToArray());
        AssertOneLineError(r, tar, "no images could be read");

        string missing = _kit.Dir.File("missing-000000.tar");
        r = CliRunner.Run(Eval().Select(a => a == EvalTestKit.EvalShard ? missing : a).ToArray());
        AssertOneLineError(r, missing, "no images could be read", "file not found");
    }

    [Fact]
    public void ABareWeightsFileNeedsAModelConfig()
    {
        var r = CliRunner.Run(["eval", "--checkpoint", _kit.Weights, "--data", EvalTestKit.EvalShard, "--device", "cpu"]);
        AssertOneLineError(r, _kit.Weights, "--model");
        r = CliRunner.Run(["eval", "--checkpoint", _kit.Dir.File("nothing-here"), "--model", _kit.Conf, "--data", EvalTestKit.EvalShard]);
        AssertOneLineError(r, "nothing-here", "no such weights file, checkpoint or run directory");
    }

    [Fact]
    public void AWeightsFileThatCarriesItsConfigNeedsNoModel()
    {
        string weights = _kit.Dir.File("self.safetensors");
        Safetensors.Save(weights, _kit.Model.state_dict(), new Dictionary<string, string>
        {
            [LiteVae.Model.Configs.ModelConfigJson.MetadataKey] = LiteVae.Model.Configs.ModelConfigJson.Write(_kit.Model.Config),
        });
        string json = _kit.Dir.File("self.json");
        var r = CliRunner.Run(["eval", "--checkpoint", weights, "--data", EvalTestKit.EvalShard, "--resolution", $"{Res}", "--device", "cpu",
            "--batch", "10", "--weights-dir", _noWeights, "--no-rfid", "--lpips", "none", "--grid", "0", "--json", json]);
        Assert.True(r.ExitCode == 0, r.Error);
        var report = EvalReport.Read(json);
        Assert.Contains("litevae.model", report.Checkpoint.ConfigSource);
    }
}
