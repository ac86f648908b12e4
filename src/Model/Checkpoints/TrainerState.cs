using System.Text.Json;
using System.Text.Json.Serialization;

namespace LiteVae.Model.Checkpoints;

/// <summary>An evaluation result attached to a checkpoint; used to keep the best one.</summary>
public sealed record CheckpointMetric(string Name, double Value, bool HigherIsBetter)
{
    public bool IsBetterThan(CheckpointMetric other) => HigherIsBetter ? Value > other.Value : Value < other.Value;
}

/// <summary>
/// trainer-state.json: everything besides tensors that a resume needs, plus the size of every file of
/// the checkpoint so a reader can tell a complete checkpoint from a damaged one. There is no RNG state:
/// all randomness is derived from (seed, step, purpose) (see Training.StepRandom).
/// </summary>
public sealed record TrainerState
{
    public const string CurrentFormat = "litevae-checkpoint/1";

    public string Format { get; init; } = CurrentFormat;
    /// <summary>Completed training steps (batches); the next step to run has this index.</summary>
    public long Step { get; init; }
    public long Seed { get; init; }
    public string Precision { get; init; } = "fp32";
    /// <summary>The data pipeline's position after the last consumed batch (opaque to the trainer).</summary>
    public string? DataPosition { get; init; }
    public long SkippedSteps { get; init; }
    public long EmaUpdates { get; init; }
    public CheckpointMetric? Metric { get; init; }
    public string CreatedUtc { get; init; } = DateTime.UtcNow.ToString("O");
    public IReadOnlyDictionary<string, string> Versions { get; init; } = new Dictionary<string, string>();
    /// <summary>Free-form extra values (e.g. the last logged losses).</summary>
    public IReadOnlyDictionary<string, double> Extra { get; init; } = new Dictionary<string, double>();
    /// <summary>File name → size in bytes, for every other file of the checkpoint.</summary>
    public IReadOnlyDictionary<string, long> Files { get; init; } = new Dictionary<string, long>();

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainerState FromJson(string json, string source)
    {
        TrainerState? s;
        try { s = JsonSerializer.Deserialize<TrainerState>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not a valid trainer state ({e.Message})."); }
        if (s is null)
            throw new InvalidDataException($"{source}: empty trainer state.");
        if (s.Format != CurrentFormat)
            throw new InvalidDataException($"{source}: checkpoint format '{s.Format}' is not supported (expected '{CurrentFormat}').");
        return s;
    }
}
