using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>One safetensors file of a checkpoint: named CPU tensors and optional metadata.</summary>
public sealed record SnapshotFile(string FileName, IReadOnlyList<KeyValuePair<string, Tensor>> Tensors,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>
/// A checkpoint held in memory: tensors already copied to the CPU, plus the trainer state and the
/// resolved config. The training thread only builds it (device→host copies); a writer thread turns it
/// into files (<see cref="CheckpointStore.Write"/>), so training does not wait for the disk. The
/// snapshot owns its tensors (detached from any dispose scope) and frees them on Dispose.
/// </summary>
public sealed class CheckpointSnapshot : IDisposable
{
    private readonly List<SnapshotFile> _files = [];
    private readonly List<Tensor> _owned = [];

    public CheckpointSnapshot(TrainerState state, string configText)
    {
        State = state;
        ConfigText = configText;
    }

    public TrainerState State { get; set; }
    public string ConfigText { get; }
    public IReadOnlyList<SnapshotFile> Files => _files;

    /// <summary>Adds a file. <paramref name="owned"/> are the tensors to free with the snapshot (the
    /// named tensors may be views of them); they are detached from the caller's dispose scope.</summary>
    public void AddFile(SnapshotFile file, IEnumerable<Tensor> owned)
    {
        if (_files.Any(f => f.FileName == file.FileName))
            throw new ArgumentException($"checkpoint file '{file.FileName}' added twice.");
        foreach (var (name, t) in file.Tensors)
            if (t.device_type != DeviceType.CPU)
                throw new ArgumentException($"snapshot tensor '{name}' is on {t.device}; copy it to the CPU first.");
        foreach (var t in owned)
        {
            t.DetachFromDisposeScope();
            _owned.Add(t);
        }
        foreach (var (_, t) in file.Tensors)
            t.DetachFromDisposeScope();
        _files.Add(file);
    }

    public void Dispose()
    {
        foreach (var f in _files)
            foreach (var (_, t) in f.Tensors)
                t.Dispose();
        foreach (var t in _owned)
            t.Dispose();
        _files.Clear();
        _owned.Clear();
    }
}
