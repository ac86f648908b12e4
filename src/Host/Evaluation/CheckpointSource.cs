using System.Globalization;
using System.Text.Json;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using static TorchSharp.torch;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// What `--checkpoint` (and `--model`) point at, resolved: the weights file, the model config that
/// goes with it, and, for a checkpoint of a training run, its step and run directory (whose eval/
/// folder receives the reports). Accepted: a run directory (its checkpoints/last), a checkpoints/
/// folder, a checkpoints/step-NNNNNNNN directory, or a bare .safetensors file (with --model unless it carries
/// its config, metadata litevae.model).
/// </summary>
internal sealed record CheckpointSource(
    string WeightsPath, string? ConfigPath, long? Step, string? RunDir, string Label, string Description)
{
    /// <summary>How the report names the config: its path, or the weights file that carries it (ConfigPath null).</summary>
    public string ConfigSource => ConfigPath ?? $"{WeightsPath} ({Model.Configs.ModelConfigJson.MetadataKey})";

    public const string ModelFile = "model.safetensors";
    public const string EmaFile = "ema.safetensors";
    public const string StateFile = "trainer-state.json";
    public const string ConfigFile = "config.conf";

    /// <param name="checkpoint">The --checkpoint value.</param>
    /// <param name="model">The --model value: required for a bare weights file; for a run's checkpoint it replaces the checkpoint's own config.</param>
    /// <param name="ema">Use the checkpoint's EMA weights (ema.safetensors) instead of the raw ones.</param>
    public static CheckpointSource Resolve(string checkpoint, string? model, bool ema = false)
    {
        if (File.Exists(checkpoint))
        {
            if (ema) throw new ArgumentException($"--ema needs a checkpoint directory (with {EmaFile}), not the file {checkpoint}.");
            // The file's own config (litevae.model) before a config.conf that merely sits beside it.
            string? config = model ?? (CarriesConfig(checkpoint) ? null : SiblingConfig(checkpoint));
            if (config is null && !CarriesConfig(checkpoint))
                throw new ArgumentException($"--checkpoint {checkpoint}: a bare weights file carries no model config; " +
                                            "add --model <config>, e.g. --model configs/model/litevae-b-f8c12.conf.");
            return new CheckpointSource(Path.GetFullPath(checkpoint), config, null, null,
                Path.GetFileNameWithoutExtension(checkpoint), checkpoint);
        }
        if (!Directory.Exists(checkpoint))
            throw new FileNotFoundException($"--checkpoint {checkpoint}: no such weights file, checkpoint or run directory.", checkpoint);

        string stepDir = StepDirectory(checkpoint);
        string weights = Path.Combine(stepDir, ema ? EmaFile : ModelFile);
        if (!File.Exists(weights))
            throw new FileNotFoundException($"{stepDir}: the checkpoint has no {Path.GetFileName(weights)}" +
                (ema ? " (the run was trained without trainer.ema = true; drop --ema)." : "; the checkpoint is incomplete, use another step-* directory."), weights);
        long? step = ReadStep(stepDir);
        string? runDir = RunDirectoryOf(stepDir);
        string configPath = model ?? Path.Combine(stepDir, ConfigFile);
        if (model is null && !File.Exists(configPath))
        {
            configPath = runDir is null ? configPath : Path.Combine(runDir, ConfigFile);
            if (!File.Exists(configPath))
                throw new FileNotFoundException($"{stepDir}: no {ConfigFile} in the checkpoint or its run directory; add --model <config>.", configPath);
        }
        string name = runDir is null ? Path.GetFileName(stepDir) : Path.GetFileName(runDir);
        string label = step is long s ? $"{name}@{s}" : name;
        if (ema) label += " (ema)";
        return new CheckpointSource(weights, configPath, step, runDir, label, stepDir);
    }

    /// <summary>The step directory behind a run directory, a checkpoints/ folder or a step directory itself.</summary>
    private static string StepDirectory(string path)
    {
        string full = Path.GetFullPath(path);
        if (IsStepDirectory(full)) return Follow(full);
        foreach (var candidate in new[] { Path.Combine(full, "checkpoints", "last"), Path.Combine(full, "last") })
            if (Directory.Exists(candidate) && IsStepDirectory(candidate))
                return Follow(candidate);
        throw new InvalidDataException(
            $"--checkpoint {path}: not a checkpoint (no {ModelFile} or {StateFile}) and no checkpoints/last inside. " +
            "Pass a run directory, its checkpoints/ folder, a checkpoints/step-NNNNNNNN directory, or a .safetensors file with --model.");
    }

    private static bool IsStepDirectory(string dir) =>
        File.Exists(Path.Combine(dir, StateFile)) || File.Exists(Path.Combine(dir, ModelFile));

    /// <summary>checkpoints/last is a symlink to a step directory: report the step directory itself.</summary>
    private static string Follow(string dir)
    {
        var target = new DirectoryInfo(dir).ResolveLinkTarget(returnFinalTarget: true);
        return target?.FullName ?? dir;
    }

    private static long? ReadStep(string stepDir)
    {
        string state = Path.Combine(stepDir, StateFile);
        if (File.Exists(state))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(state));
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out long step))
                    return step;
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{state}: not valid JSON ({e.Message}); the checkpoint is damaged, use another step-* directory.");
            }
        }
        string name = Path.GetFileName(stepDir);
        return name.StartsWith("step-", StringComparison.Ordinal)
               && long.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out long fromName)
            ? fromName : null;
    }

    /// <summary>&lt;run&gt;/checkpoints/step-N → &lt;run&gt; when &lt;run&gt; has its config.conf.</summary>
    private static string? RunDirectoryOf(string stepDir)
    {
        var parent = Directory.GetParent(stepDir);
        if (parent is null || parent.Name != "checkpoints" || parent.Parent is null) return null;
        return File.Exists(Path.Combine(parent.Parent.FullName, ConfigFile)) ? parent.Parent.FullName : null;
    }

    private static bool CarriesConfig(string weightsFile)
    {
        if (!weightsFile.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return false;
        try { return Safetensors.ReadHeader(weightsFile).Metadata.ContainsKey(Model.Configs.ModelConfigJson.MetadataKey); }
        catch (InvalidDataException) { return false; }   // a damaged file is reported when it is loaded
    }

    private static string? SiblingConfig(string weightsFile)
    {
        string candidate = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(weightsFile))!, ConfigFile);
        return File.Exists(candidate) ? candidate : null;
    }

    /// <summary>
    /// The autoencoder of this checkpoint on <paramref name="device"/> in <paramref name="dtype"/>, loaded as
    /// every model is (<see cref="Inference.ModelLoader.Load"/>: through CheckpointGuard, a training
    /// checkpoint's loss.* keys ignored); a refusal is reworded for evaluation (<see cref="Reworded"/>).
    /// </summary>
    public LiteAutoencoder Load(Device device, ScalarType dtype)
    {
        try
        {
            return Inference.ModelLoader.Load(ConfigPath, WeightsPath, device, dtype);
        }
        catch (CheckpointRefusedException e) when (Reworded(e) is { } reworded)
        {
            throw reworded;
        }
    }

    /// <summary>A damaged file needs another checkpoint; a mismatch, the config the weights were trained with.</summary>
    private Exception? Reworded(CheckpointRefusedException e) => e.Reason switch
    {
        RefusalReason.Damaged => new InvalidDataException($"{e.Message.TrimEnd('.')}: the checkpoint is damaged or not a LiteVAE weights file.", e),
        RefusalReason.OtherModel => new ArgumentException($"{e.Message} The weights were trained with another model configuration than {ConfigSource} " +
                                                          "(another preset, embed_dim or width): evaluate them with the config they were trained with (--model).", e),
        _ => null,
    };
}
