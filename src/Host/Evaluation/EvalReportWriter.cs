using System.Globalization;
using System.Text;
using LiteVae.Data.Imaging;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Metrics;
using LiteVae.Model.Training;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// Turns <see cref="EvalResults"/> into a report and its files: the JSON, the reconstruction grid
/// (first images; originals over reconstructions), the worst-images grid, the per-image CSV (worst
/// first) and, for a run's checkpoint, TensorBoard scalars eval/&lt;metric&gt; at the checkpoint's step.
/// </summary>
internal static class EvalReportWriter
{
    public const string Transform = "resize the short side to the resolution (bicubic, antialiased like PIL), then centre crop";

    public static EvalReport Build(EvalResults results, string label, ReportCheckpoint checkpoint, ReportModel model,
        IReadOnlyDictionary<string, string>? versions = null)
    {
        var metrics = new Dictionary<string, ReportMetric>();
        foreach (var name in EvalReport.MetricOrder)
        {
            var v = results.Summary.Values.FirstOrDefault(m => m.Name == name);
            if (v is not null) metrics[name] = new ReportMetric(v.Value, v.Unavailable, v.Note);
        }
        var d = results.Data;
        var t = results.Timing;
        return new EvalReport
        {
            Label = label,
            Checkpoint = checkpoint,
            Model = model,
            Data = new ReportData(d.Source, d.Resolution, Transform, d.Images, d.Limit, d.BadSamples, d.BadReasons, d.UnreadableShards),
            Metrics = metrics,
            Timing = new ReportTiming(Round(t.Seconds), Round(t.ImagesPerSecond), Round(t.ComputeSeconds), Round(t.DataWaitSeconds), Round(t.FidSeconds)),
            Versions = versions ?? DefaultVersions(),
        };
    }

    public static IReadOnlyDictionary<string, string> DefaultVersions() => new Dictionary<string, string>
    {
        ["litevae"] = typeof(EvalReportWriter).Assembly.GetName().Version?.ToString() ?? "?",
        ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?",
        ["dotnet"] = Environment.Version.ToString(),
    };

    /// <summary>Sibling file names of a report: x.json → x.png, x-worst.png, x.csv.</summary>
    public static (string Grid, string WorstGrid, string Csv) SiblingPaths(string jsonPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        string stem = Path.GetFileNameWithoutExtension(jsonPath);
        return (Path.Combine(dir, stem + ".png"), Path.Combine(dir, stem + "-worst.png"), Path.Combine(dir, stem + ".csv"));
    }

    /// <summary>Writes the grids, the CSV and then the JSON (atomically); returns the report with its file names.</summary>
    public static EvalReport WriteFiles(EvalReport report, EvalResults results, string jsonPath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!);
        var (grid, worst, csv) = SiblingPaths(jsonPath);
        string? gridName = null, worstName = null;
        if (results.First.Pairs.Count > 0)
        {
            WritePng(grid, ImageGrid.Compose(results.First.Pairs, results.Height, results.Width));
            gridName = Path.GetFileName(grid);
        }
        if (results.Worst.Pairs.Count > 0)
        {
            WritePng(worst, ImageGrid.Compose(results.Worst.Pairs, results.Height, results.Width));
            worstName = Path.GetFileName(worst);
        }
        WriteCsv(csv, results.WorstFirst);
        var withFiles = report with { Files = new ReportFiles(gridName, worstName, Path.GetFileName(csv)) };
        string temp = jsonPath + ".tmp";
        File.WriteAllText(temp, withFiles.ToJson());
        File.Move(temp, jsonPath, overwrite: true);
        return withFiles;
    }

    private static void WritePng(string path, RgbPixels grid) => ImageFile.WritePng(path, new RgbImage(grid.Width, grid.Height, grid.Pixels));

    /// <summary>One row per image, worst first: rank, index (evaluation order), shard, key, then the metrics (empty when unavailable).</summary>
    public static void WriteCsv(string path, IReadOnlyList<EvaluatedImage> worstFirst)
    {
        var sb = new StringBuilder("rank,index,shard,key,psnr,ssim,ms_ssim,lpips\n");
        int rank = 1;
        foreach (var image in worstFirst)
        {
            var m = image.Metrics;
            sb.Append(rank++).Append(',').Append(m.Index).Append(',')
              .Append(Csv(image.Source.Shard)).Append(',').Append(Csv(image.Source.Key)).Append(',')
              .Append(Number(m.Psnr)).Append(',').Append(Number(m.Ssim)).Append(',')
              .Append(Number(m.MsSsim)).Append(',').Append(Number(m.Lpips)).Append('\n');
        }
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>
    /// eval/&lt;metric&gt; scalars at the checkpoint's step, and the reconstruction grid as eval/reconstructions
    /// when the report has one, in a new event file of the run's tb/ folder.
    /// </summary>
    public static void WriteTensorBoard(string tbDirectory, long step, EvalReport report, string? jsonPath = null)
    {
        var tb = new TensorBoardLog(tbDirectory, $".eval-{step}");
        tb.Scalars(step, report.Metrics.Where(m => m.Value.Value is not null).Select(m => KeyValuePair.Create($"eval/{m.Key}", m.Value.Value!.Value)));
        if (jsonPath is not null && report.Files?.Grid is { } grid)
            tb.ImageFile("eval/reconstructions", Path.Combine(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!, grid), step);
    }

    private static double Round(double seconds) => Math.Round(seconds, 4);

    private static string Number(double? v) => v switch
    {
        null => "",
        double.PositiveInfinity => "inf",
        double x => x.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string Csv(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
}
