using System.Globalization;
using System.Text;
using LiteVae.Model.Evaluation;

namespace LiteVae.Host.Evaluation;

/// <summary>The evaluation report as text for the terminal: what was evaluated, then one line per metric.</summary>
internal static class EvalTable
{
    public static string DisplayName(string metric) => metric switch
    {
        "rfid" => "rFID",
        "lpips" => "LPIPS",
        "psnr" => "PSNR",
        "ssim" => "SSIM",
        "ms_ssim" => "MS-SSIM",
        _ => metric,
    };

    /// <summary>A metric value at the precision the paper's tables use (PSNR in dB).</summary>
    public static string FormatValue(string metric, double? value) => value switch
    {
        null => "n/a",
        double.PositiveInfinity => "inf",
        double v => metric switch
        {
            "psnr" => v.ToString("0.00", CultureInfo.InvariantCulture) + " dB",
            "rfid" => v.ToString("0.000", CultureInfo.InvariantCulture),
            _ => v.ToString("0.0000", CultureInfo.InvariantCulture),
        },
    };

    public static string Render(EvalReport report, IReadOnlyList<EvaluatedImage>? worstFirst = null, string? jsonPath = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var c = report.Checkpoint;
        var d = report.Data;
        var m = report.Model;
        var t = report.Timing;
        sb.AppendLine($"evaluation of {report.Label}");
        sb.AppendLine($"  checkpoint  {c.Path}" + (c.Step is long s ? $" (step {s})" : ""));
        sb.AppendLine(string.Create(inv, $"  model       {c.ConfigSource}: embed_dim {m.EmbedDim}, {m.Parameters / 1e6:0.00} M parameters, {m.Precision} on {m.Device}, batch {m.BatchSize}"));
        sb.AppendLine($"  data        {string.Join(", ", d.Source)}: {d.Images} images at {d.Resolution} x {d.Resolution}" +
                      (d.Limit is long l ? $" (--limit {l})" : "") +
                      (d.BadSamples > 0 ? $", {d.BadSamples} bad samples skipped ({string.Join(", ", d.BadReasons.Select(r => $"{r.Key} {r.Value}"))})" : ", no bad samples") +
                      (d.UnreadableShards > 0 ? $", {d.UnreadableShards} shards unreadable" : ""));
        sb.AppendLine(string.Create(inv, $"  time        {t.Seconds:0.0} s, {t.ImagesPerSecond:0.0} img/s (reconstruction + metrics {t.ComputeSeconds:0.0} s, data wait {t.DataWaitSeconds:0.0} s, rFID {t.RfidSeconds:0.0} s)"));
        sb.AppendLine();
        sb.AppendLine($"  {"metric",-8}  {"value",-10}  notes");
        foreach (var (name, metric) in report.Metrics)
        {
            string note = metric.Unavailable is { } why ? "unavailable: " + why : metric.Note ?? "";
            sb.AppendLine($"  {DisplayName(name),-8}  {FormatValue(name, metric.Value),-10}  {note}");
        }
        if (worstFirst is { Count: > 0 })
        {
            bool byLpips = worstFirst[0].Metrics.Lpips.HasValue;
            sb.AppendLine();
            sb.AppendLine($"  worst images (by {(byLpips ? "LPIPS" : "PSNR")}): " + string.Join(", ", worstFirst.Take(5).Select(w =>
                $"{w.Source.Key} ({(byLpips ? FormatValue("lpips", w.Metrics.Lpips) : FormatValue("psnr", w.Metrics.Psnr))})")));
        }
        sb.AppendLine();
        if (jsonPath is null)
            sb.AppendLine("  no report files written (add --json <file> for the JSON, grids and per-image CSV).");
        else
        {
            var f = report.Files;
            sb.AppendLine($"  report      {jsonPath}");
            if (f is not null)
                sb.AppendLine("  also        " + string.Join(", ", new[] { f.Grid, f.WorstGrid, f.PerImageCsv }.Where(x => x is not null)));
        }
        return sb.ToString();
    }
}
