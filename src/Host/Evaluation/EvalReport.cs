using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LiteVae.Host.Evaluation;

/// <summary>The checkpoint an evaluation scored.</summary>
/// <param name="Path">The checkpoint directory or weights file that was evaluated.</param>
/// <param name="Weights">The weights file read (model.safetensors, ema.safetensors or the file given).</param>
/// <param name="ConfigSource">The model config file the model was built from.</param>
internal sealed record ReportCheckpoint(string Path, string Weights, long? Step, string? RunDir, string ConfigSource);

/// <summary>The model as evaluated.</summary>
internal sealed record ReportModel(int EmbedDim, long Parameters, string Precision, string Device, int BatchSize, string Config);

/// <summary>The evaluation data.</summary>
internal sealed record ReportData(IReadOnlyList<string> Source, int Resolution, string Transform, long Images, long? Limit,
    long BadSamples, IReadOnlyDictionary<string, long> BadReasons, long UnreadableShards);

/// <summary>One metric: its value, or why it is unavailable.</summary>
internal sealed record ReportMetric(double? Value, string? Unavailable, string? Note);

internal sealed record ReportTiming(double Seconds, double ImagesPerSecond, double ComputeSeconds, double DataWaitSeconds, double RfidSeconds);

/// <summary>The files written next to the JSON (names relative to its folder).</summary>
internal sealed record ReportFiles(string? Grid, string? WorstGrid, string? PerImageCsv);

/// <summary>
/// An evaluation report as written to JSON (snake_case keys) and read back by `litevae compare`.
/// Metrics are keyed psnr, ssim, ms_ssim, lpips, rfid; an unavailable metric has no value and an
/// "unavailable" reason. PSNR of identical images is written as "Infinity".
/// </summary>
internal sealed record EvalReport
{
    public const string CurrentFormat = "litevae-eval/1";

    /// <summary>The metrics in the order of the paper's tables.</summary>
    public static readonly string[] MetricOrder = ["rfid", "lpips", "psnr", "ssim", "ms_ssim"];

    public string Format { get; init; } = CurrentFormat;
    public required string Label { get; init; }
    public string CreatedUtc { get; init; } = DateTime.UtcNow.ToString("O");
    public required ReportCheckpoint Checkpoint { get; init; }
    public required ReportModel Model { get; init; }
    public required ReportData Data { get; init; }
    public required IReadOnlyDictionary<string, ReportMetric> Metrics { get; init; }
    public required ReportTiming Timing { get; init; }
    public string Reconstruction { get; init; } = "posterior mode (the mean), decoded, clamped to [-1, 1] and rounded to 8 bits, as a saved PNG";
    public ReportFiles? Files { get; init; }
    public IReadOnlyDictionary<string, string> Versions { get; init; } = new Dictionary<string, string>();

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // readable reasons and paths; the file is not embedded in HTML
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a report; errors name the file and say what is wrong.</summary>
    public static EvalReport Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: evaluation report not found.", path);
        EvalReport? report;
        try
        {
            report = JsonSerializer.Deserialize<EvalReport>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not an evaluation report written by `litevae eval` ({e.Message}).");
        }
        if (report is null)
            throw new InvalidDataException($"{path}: empty evaluation report.");
        if (report.Format != CurrentFormat)
            throw new InvalidDataException($"{path}: report format '{report.Format}' is not supported (expected '{CurrentFormat}').");
        return report;
    }

    public ReportMetric? Metric(string name) => Metrics.TryGetValue(name, out var m) ? m : null;
}
