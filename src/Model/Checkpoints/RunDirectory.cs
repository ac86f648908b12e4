using System.Globalization;
using System.Text.RegularExpressions;

namespace LiteVae.Model.Checkpoints;

/// <summary>
/// The layout of a run directory, in one place: <c>runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;name&gt;_&lt;precision&gt;/</c> with
/// <c>config.conf</c> (the resolved config), <c>checkpoints/</c>, <c>eval/</c> (metrics, grids and per-image scores
/// per step), <c>tb/</c> (TensorBoard event files), <c>audit/</c> (which samples each step trained, the skipped
/// ones), <c>data-index.json</c> (the training shards' layout), <c>run-token</c> and <c>run-id</c>. The name layout matches the
/// reference's <c>&lt;timestamp&gt;_&lt;config&gt;_&lt;precision&gt;</c>, which its metrics script parses.
/// </summary>
public static partial class RunDirectory
{
    public const string ConfigFile = "config.conf";
    public const string TokenFile = "run-token";
    public const string DataIndexFile = "data-index.json";
    /// <summary>A random id written once by the node that made the run directory: another node that reads the same id
    /// at the same path shares this directory (one disk); otherwise checkpoints reach it over the cluster.</summary>
    public const string IdFile = "run-id";

    public static string ConfigOf(string run) => Path.Combine(run, ConfigFile);
    public static string CheckpointsOf(string run) => Path.Combine(run, "checkpoints");
    public static string EvalOf(string run) => Path.Combine(run, "eval");
    public static string TensorBoardOf(string run) => Path.Combine(run, "tb");
    public static string DataIndexOf(string run) => Path.Combine(run, DataIndexFile);
    public static string TokenOf(string run) => Path.Combine(run, TokenFile);
    public static string IdOf(string run) => Path.Combine(run, IdFile);

    /// <summary>The run directory's id (<see cref="IdFile"/>), written on first use.</summary>
    public static string EnsureId(string run)
    {
        string path = IdOf(run);
        if (File.Exists(path)) return File.ReadAllText(path).Trim();
        string id = Guid.NewGuid().ToString("N");
        File.WriteAllText(path + ".tmp", id);
        File.Move(path + ".tmp", path, overwrite: false);
        return id;
    }

    /// <summary>The id at <paramref name="run"/> on this node, or null when there is none.</summary>
    public static string? ReadId(string run)
    {
        try { return File.Exists(IdOf(run)) ? File.ReadAllText(IdOf(run)).Trim() : null; }
        catch (IOException) { return null; }
    }

    /// <summary><c>step-00000200</c>: the name of a step's checkpoint directory and of its evaluation reports.</summary>
    public static string StepName(long step) => $"step-{step.ToString("D8", CultureInfo.InvariantCulture)}";

    /// <summary>The step of a <c>step-NNNNNNNN</c> name or path (its last part, any extension); null for anything else.</summary>
    public static long? StepOf(string path)
    {
        string name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(path));
        return name.StartsWith("step-", StringComparison.Ordinal)
               && long.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out long s) ? s : null;
    }

    /// <summary>&lt;run&gt;/checkpoints/step-N → &lt;run&gt;.</summary>
    public static string? OfCheckpoint(string checkpoint) =>
        Directory.GetParent(Path.TrimEndingDirectorySeparator(checkpoint))?.Parent?.FullName;

    /// <summary>The directory name for a run started at <paramref name="startedLocal"/>.</summary>
    public static string NewName(string name, string precision, DateTime startedLocal)
    {
        string safe = Unsafe().Replace(name.Trim(), "-").Trim('-');
        if (safe.Length == 0) safe = "run";
        return $"{startedLocal.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}_{safe}_{precision}";
    }

    [GeneratedRegex("[^A-Za-z0-9.-]+")]
    private static partial Regex Unsafe();
}
