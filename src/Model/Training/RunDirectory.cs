using System.Globalization;
using System.Text.RegularExpressions;

namespace LiteVae.Model.Training;

/// <summary>
/// The run directory (architecture.md): <c>runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;name&gt;_&lt;precision&gt;/</c> with
/// <c>config.conf</c> (the resolved config), <c>checkpoints/</c>, <c>eval/</c> (metrics JSON and
/// reconstruction grids per step) and <c>tb/</c> (TensorBoard event files). The name layout matches
/// the reference's <c>&lt;timestamp&gt;_&lt;config&gt;_&lt;precision&gt;</c>, which its metrics script parses.
/// </summary>
public sealed partial class RunDirectory
{
    public const string ConfigFileName = "config.conf";

    private RunDirectory(string root) => Root = Path.GetFullPath(root);

    public string Root { get; }
    public string ConfigPath => Path.Combine(Root, ConfigFileName);
    public string Checkpoints => Path.Combine(Root, "checkpoints");
    public string Eval => Path.Combine(Root, "eval");
    public string Tb => Path.Combine(Root, "tb");

    public string EvalJson(long step) => Path.Combine(Eval, $"step-{step.ToString("D8", CultureInfo.InvariantCulture)}.json");
    public string EvalPng(long step) => Path.Combine(Eval, $"step-{step.ToString("D8", CultureInfo.InvariantCulture)}.png");

    /// <summary>The directory name for a run started at <paramref name="startedLocal"/>.</summary>
    public static string DirectoryName(string name, string precision, DateTime startedLocal)
    {
        string safe = Unsafe().Replace(name.Trim(), "-").Trim('-');
        if (safe.Length == 0) safe = "run";
        return $"{startedLocal.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}_{safe}_{precision}";
    }

    /// <summary>Creates a new run directory under <paramref name="parent"/> (a suffix keeps names unique).</summary>
    public static RunDirectory Create(string parent, string name, string precision, DateTime startedLocal, string resolvedConfig)
    {
        string baseName = DirectoryName(name, precision, startedLocal);
        string path = Path.Combine(parent, baseName);
        for (int i = 2; Directory.Exists(path); i++)
            path = Path.Combine(parent, $"{baseName}-{i}");
        return CreateAt(path, resolvedConfig);
    }

    /// <summary>Creates a run directory at an explicit path, which must not exist or be empty.</summary>
    public static RunDirectory CreateAt(string path, string resolvedConfig)
    {
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
            throw new IOException($"{path}: run directory already exists and is not empty; use --resume {path} to continue it, or choose another --run-dir.");
        var run = new RunDirectory(path);
        Directory.CreateDirectory(run.Root);
        Directory.CreateDirectory(run.Checkpoints);
        Directory.CreateDirectory(run.Eval);
        Directory.CreateDirectory(run.Tb);
        File.WriteAllText(run.ConfigPath, resolvedConfig);
        return run;
    }

    /// <summary>Opens an existing run directory (for --resume).</summary>
    public static RunDirectory Open(string path)
    {
        var run = new RunDirectory(path);
        if (!Directory.Exists(run.Root))
            throw new DirectoryNotFoundException($"{path}: run directory not found.");
        if (!File.Exists(run.ConfigPath))
            throw new InvalidDataException($"{path}: not a run directory (no {ConfigFileName}).");
        Directory.CreateDirectory(run.Checkpoints);
        Directory.CreateDirectory(run.Eval);
        Directory.CreateDirectory(run.Tb);
        return run;
    }

    [GeneratedRegex("[^A-Za-z0-9.-]+")]
    private static partial Regex Unsafe();
}
