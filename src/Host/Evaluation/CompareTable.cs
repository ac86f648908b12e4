using System.Globalization;
using System.Text;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// `litevae compare`: evaluation reports side by side, one row per report (rFID, LPIPS, PSNR, SSIM,
/// MS-SSIM; the best value among the reports marked with *), optionally followed by the published
/// reference rows, and notes where the reports are not comparable (different image counts,
/// resolutions or data).
/// </summary>
internal static class CompareTable
{
    private static readonly string[] Metrics = ["rfid", "lpips", "psnr", "ssim", "ms_ssim"];

    /// <summary>Lower is better for rFID and LPIPS, higher for the rest.</summary>
    public static bool LowerIsBetter(string metric) => metric is "rfid" or "lpips";

    public static string Render(IReadOnlyList<(string Path, EvalReport Report)> reports, bool reference, bool markdown)
    {
        var header = new[] { "run", "step", "images", "res", "rFID", "LPIPS", "PSNR", "SSIM", "MS-SSIM" };
        var rows = new List<string[]>();
        var best = new Dictionary<string, double>();
        foreach (var m in Metrics)
        {
            var values = reports.Select(r => r.Report.Metric(m)?.Value).Where(v => v is double x && double.IsFinite(x)).Select(v => v!.Value).ToList();
            if (values.Count > 1) best[m] = LowerIsBetter(m) ? values.Min() : values.Max();
        }
        foreach (var (_, r) in reports)
        {
            var cells = new List<string>
            {
                r.Label,
                r.Checkpoint.Step?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.Data.Images.ToString(CultureInfo.InvariantCulture),
                r.Data.Resolution.ToString(CultureInfo.InvariantCulture),
            };
            foreach (var m in Metrics)
            {
                var v = r.Metric(m)?.Value;
                string text = v is null ? "n/a" : Value(m, v.Value);
                if (v is double x && best.TryGetValue(m, out double b) && x == b) text += "*";
                cells.Add(text);
            }
            rows.Add([.. cells]);
        }
        int runRows = rows.Count;
        if (reference)
            foreach (var rr in ReferenceResults.Rows)
                rows.Add([$"[{rr.Source}] {rr.Label}" + (rr.Note is null ? "" : $" ({rr.Note})"), "-", "50000", rr.Resolution.ToString(CultureInfo.InvariantCulture),
                    Value("rfid", rr.Rfid, 2), Value("lpips", rr.Lpips, 3), Value("psnr", rr.Psnr), Value("ssim", rr.Ssim, 2), "-"]);

        var sb = new StringBuilder(markdown ? Markdown(header, rows) : Aligned(header, rows, runRows));
        var notes = Notes(reports, reference);
        if (notes.Count > 0)
        {
            sb.AppendLine();
            foreach (var n in notes) sb.AppendLine((markdown ? "- " : "note: ") + n);
        }
        return sb.ToString();
    }

    private static string Value(string metric, double v, int? decimals = null)
    {
        if (double.IsPositiveInfinity(v)) return "inf";
        int d = decimals ?? metric switch { "psnr" => 2, "rfid" => 3, _ => 4 };
        return v.ToString("F" + d, CultureInfo.InvariantCulture);
    }

    private static List<string> Notes(IReadOnlyList<(string Path, EvalReport Report)> reports, bool reference)
    {
        var notes = new List<string>();
        if (reports.Count > 1 && reports.Select(r => r.Report.Metric("rfid")?.Value).Any(v => v is not null) &&
            reports.Select(r => r.Report.Data.Images).Distinct().Count() > 1)
            notes.Add("the reports use different numbers of images; rFID depends on the count (it is biased upwards for small sets), so compare rFID only between equal counts.");
        if (reports.Select(r => r.Report.Data.Resolution).Distinct().Count() > 1)
            notes.Add("the reports use different resolutions.");
        if (reports.Select(r => string.Join("|", r.Report.Data.Source)).Distinct().Count() > 1)
            notes.Add("the reports use different data: " + string.Join("; ", reports.Select(r => $"{r.Report.Label}: {string.Join(", ", r.Report.Data.Source)}").Distinct()) + ".");
        foreach (var (path, r) in reports)
            foreach (var (name, m) in r.Metrics)
                if (m.Unavailable is not null && reports.Any(o => o.Report.Metric(name)?.Value is not null))
                    notes.Add($"{r.Label}: {EvalTable.DisplayName(name)} unavailable ({m.Unavailable})");
        var lpipsNotes = reports.Select(r => r.Report.Metric("lpips")?.Note).Where(n => n is not null).Distinct().ToList();
        if (lpipsNotes.Count > 1)
            notes.Add($"LPIPS was computed with different networks: {string.Join(", ", lpipsNotes)}.");
        if (reference)
            notes.Add("reference rows: ImageNet validation, 50k images, published numbers (spec section 10); the paper does not say which LPIPS network it used, ours is VGG unless noted.");
        return notes;
    }

    private static string Aligned(string[] header, List<string[]> rows, int runRows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(string[] cells) => sb.AppendLine(string.Join("  ", cells.Select((c, i) => i < 2 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd());
        Line(header);
        sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        for (int i = 0; i < rows.Count; i++)
        {
            if (i == runRows && i > 0) sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
            Line(rows[i]);
        }
        return sb.ToString();
    }

    private static string Markdown(string[] header, List<string[]> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", header) + " |");
        sb.AppendLine("|" + string.Join("|", header.Select((_, i) => i < 2 ? "---" : "---:")) + "|");
        foreach (var r in rows) sb.AppendLine("| " + string.Join(" | ", r.Select(c => c.Replace("|", "\\|"))) + " |");
        return sb.ToString();
    }
}
