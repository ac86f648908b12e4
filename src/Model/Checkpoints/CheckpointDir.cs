using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>
/// A validated checkpoint directory. <see cref="Open"/> accepts a step directory, a <c>last</c> /
/// <c>best</c> link, a <c>checkpoints/</c> folder or a whole run directory (then it takes
/// <c>checkpoints/last</c>), and checks that the trainer state parses and that every file it lists
/// exists with the recorded size and (for safetensors) a valid header. Errors name the path and say
/// what is wrong.
/// </summary>
public sealed class CheckpointDir
{
    private CheckpointDir(string path, TrainerState state, string configText)
    {
        Path = path;
        State = state;
        ConfigText = configText;
    }

    /// <summary>The resolved step directory (links followed).</summary>
    public string Path { get; }
    public TrainerState State { get; }
    public string ConfigText { get; }

    public static CheckpointDir Open(string path)
    {
        string dir = Resolve(path);
        string statePath = System.IO.Path.Combine(dir, CheckpointStore.StateFile);
        var state = TrainerState.FromJson(File.ReadAllText(statePath), statePath);
        if (state.Files.Count == 0)
            throw new InvalidDataException($"{statePath}: lists no files; the checkpoint is incomplete.");
        foreach (var (name, size) in state.Files)
        {
            string file = System.IO.Path.Combine(dir, name);
            if (!File.Exists(file))
                throw new InvalidDataException($"{dir}: checkpoint file '{name}' is missing; the checkpoint is incomplete (use an older step-* directory).");
            long actual = new FileInfo(file).Length;
            if (actual != size)
                throw new InvalidDataException($"{file}: {actual} bytes, but the checkpoint recorded {size}; the file is damaged (use an older step-* directory).");
            if (name.EndsWith(".safetensors", StringComparison.Ordinal))
                Safetensors.ReadHeader(file);
        }
        string configPath = System.IO.Path.Combine(dir, CheckpointStore.ConfigFile);
        string config = File.Exists(configPath) ? File.ReadAllText(configPath) : "";
        return new CheckpointDir(dir, state, config);
    }

    private static string Resolve(string path)
    {
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{path}: no such checkpoint or run directory.");
        string full = System.IO.Path.GetFullPath(path);
        if (File.Exists(System.IO.Path.Combine(full, CheckpointStore.StateFile)))
            return ResolveLink(full);
        foreach (var candidate in new[] { System.IO.Path.Combine(full, "checkpoints", CheckpointStore.LastLink), System.IO.Path.Combine(full, CheckpointStore.LastLink) })
            if (Directory.Exists(candidate) && File.Exists(System.IO.Path.Combine(candidate, CheckpointStore.StateFile)))
                return ResolveLink(candidate);
        throw new InvalidDataException(
            $"{path}: not a checkpoint (no {CheckpointStore.StateFile}) and no complete checkpoints/last inside. " +
            "Pass a run directory, its checkpoints/ folder, or a checkpoints/step-NNNNNNNN directory.");
    }

    private static string ResolveLink(string dir)
    {
        var info = new DirectoryInfo(dir);
        var target = info.ResolveLinkTarget(returnFinalTarget: true);
        return target?.FullName ?? info.FullName;
    }

    public bool Has(string fileName) => State.Files.ContainsKey(fileName);

    /// <summary>Loads the tensors of one file (all, or those <paramref name="include"/> accepts) onto the CPU.</summary>
    public Dictionary<string, Tensor> Load(string fileName, Func<string, bool>? include = null)
    {
        if (!Has(fileName))
            throw new InvalidDataException($"{Path}: this checkpoint has no {fileName} (it has {string.Join(", ", State.Files.Keys)}).");
        return Safetensors.Load(System.IO.Path.Combine(Path, fileName), include);
    }
}
