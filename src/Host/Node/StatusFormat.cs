using System.Globalization;
using System.Text;
using LiteVae.Actors.Protocol;

namespace LiteVae.Host.Node;

/// <summary>The text tables the cluster commands print.</summary>
public static class StatusFormat
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,   // loss and reason names stay as the trainer writes them
    };

    /// <summary>The whole status as JSON (snake_case names; the sample counts are for the whole run).</summary>
    public static string Json(ClientProtocol.ClusterStatus s) => System.Text.Json.JsonSerializer.Serialize(s, JsonOptions);

    public static string Status(ClientProtocol.ClusterStatus s)
    {
        var b = new StringBuilder();
        b.AppendLine(Inv, $"run        {s.RunState}  {s.RunDir}");
        b.AppendLine(Inv, $"step       {s.Step} / {s.MaxSteps}   {s.ImagesPerSecond:F1} img/s   data wait {s.DataWaitFraction * 100:F1}%");
        if (s.Losses.Count > 0)
            b.AppendLine("losses     " + string.Join("  ", s.Losses.OrderBy(kv => kv.Key).Select(kv => string.Create(Inv, $"{kv.Key} {kv.Value:G5}"))));
        b.AppendLine("checkpts   " + (s.CheckpointSteps.Count == 0 ? "none" : string.Join(", ", s.CheckpointSteps.TakeLast(5).Select(x => $"step-{x}"))));
        var d = s.Data;
        string reasons = d.SkippedByReason.Count == 0 ? "" : $" ({string.Join(", ", d.SkippedByReason.Select(r => $"{r.Key} {r.Value}"))})";
        b.AppendLine(Inv, $"samples    epoch {d.Epoch}, sample {d.NextSample}: {d.SamplesTrained} trained, {d.SamplesSkipped} skipped as bad{reasons}, " +
                          $"{d.DroppedBatches} batch(es) dropped as repeats (whole run); {d.LeasesReissued} lease(s) re-issued since the coordinator started");
        b.AppendLine("queues");
        foreach (var q in s.Queues.OrderBy(q => q.Node).ThenBy(q => q.Stage))
            b.AppendLine(Inv, $"  {q.Node,-22} {q.Stage,-8} {q.Depth,4} / {q.Capacity}");
        b.AppendLine("members");
        foreach (var m in s.Members)
            b.AppendLine(Inv, $"  {m.Address,-40} {m.Status,-8} {(m.Reachable ? "" : "UNREACHABLE ")}{string.Join(",", m.Roles.Where(r => !r.StartsWith("dc-", StringComparison.Ordinal)))}");
        if (s.Evaluations.Count > 0)
        {
            b.AppendLine("evaluations");
            foreach (var e in s.Evaluations)
                b.AppendLine(Inv, $"  {e.JobId}  {e.State,-8} {Path.GetFileName(e.CheckpointPath)}  {e.Error}");
        }
        return b.ToString();
    }

    public static string Metrics(EvaluationStatus e)
    {
        var b = new StringBuilder();
        b.AppendLine(Inv, $"evaluation {e.JobId} of {e.CheckpointPath} on {e.Node ?? "?"}: {e.State}");
        if (e.Error is not null) b.AppendLine("error: " + e.Error);
        if (e.Metrics.Count > 0)
        {
            b.AppendLine("metric     value");
            foreach (var m in e.Metrics)
                b.AppendLine(Inv, $"{m.Name,-10} {(m.Value is double v ? v.ToString("F4", Inv) : "unavailable: " + m.Unavailable)}");
        }
        if (e.ReportPath is not null) b.AppendLine("report: " + e.ReportPath);
        return b.ToString();
    }
}
