using System.Globalization;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Actors.Training;

/// <summary>
/// A run's <c>checkpoints/</c> through the atomic <see cref="CheckpointStore"/> of src/Model: writes (temporary
/// folder, fsync, rename, retention), lists, resolves <c>last</c> / <c>step-N</c>, and pins a checkpoint an
/// evaluation waits for. <paramref name="debugFileDelayMs"/> slows each file down (a test hook: kill mid-write).
/// </summary>
public sealed class RunCheckpoints(int debugFileDelayMs = 0) : ICheckpointStore
{
    /// <summary>What <see cref="LiteVaeEngine.Snapshot"/> hands over: the CPU copies and the run's retention policy.</summary>
    public sealed class Snapshot(CheckpointSnapshot inner, RetentionPolicy retention) : ICheckpointSnapshot
    {
        public CheckpointSnapshot Inner => inner;
        public RetentionPolicy Retention => retention;
        public long Step => inner.State.Step;
        public void Dispose() => inner.Dispose();
    }

    private static string Dir(string runDir) => RunDirectory.CheckpointsOf(runDir);

    public string Write(ICheckpointSnapshot snapshot, string runDir, string reason)
    {
        var s = (Snapshot)snapshot;
        Action<string>? afterFile = debugFileDelayMs > 0 ? _ => Thread.Sleep(debugFileDelayMs) : null;
        return CheckpointStore.Write(Dir(runDir), s.Inner, s.Retention, afterFile);
    }

    public IReadOnlyList<CheckpointEntry> List(string runDir) =>
        CheckpointStore.List(Dir(runDir)).Select(c => new CheckpointEntry(c.Step, c.Path)).ToList();

    public IDisposable? Pin(string runDir, string checkpoint, string owner)
    {
        string checkpoints = Path.GetFullPath(Dir(runDir));
        if (Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpoint))) != checkpoints)
            return null; // not one of this run's step directories: no retention touches it
        try
        {
            return new PinHandle(CheckpointStore.Pin(checkpoints, checkpoint, owner));
        }
        catch (DirectoryNotFoundException e) { throw new CheckpointNotFoundException(e.Message); }
    }

    public void ClearPins(string runDir) => CheckpointStore.ClearPins(Dir(runDir));

    private sealed class PinHandle(string path) : IDisposable
    {
        public void Dispose() => CheckpointStore.Unpin(path);
    }

    public string Resolve(string runDir, string spec)
    {
        var all = List(runDir);
        string Available() => string.Join(", ", all.Select(c => $"step-{c.Step}").DefaultIfEmpty("none"));
        if (spec == "last")
            return all.LastOrDefault()?.Path ?? throw new CheckpointNotFoundException($"no checkpoint in {runDir} yet");
        if (spec.StartsWith("step-", StringComparison.Ordinal))
        {
            if (!long.TryParse(spec[5..], NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                throw new CheckpointNotFoundException($"'{spec}' is not last, step-N or a checkpoint directory");
            return all.FirstOrDefault(c => c.Step == step)?.Path
                   ?? throw new CheckpointNotFoundException($"no checkpoint '{spec}' in {runDir} (available: {Available()})");
        }
        if (!Directory.Exists(spec))
            throw new CheckpointNotFoundException($"no checkpoint '{spec}': not last, step-N or an existing directory (available: {Available()})");
        try { return CheckpointDir.Open(spec).Path; }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new CheckpointNotFoundException($"'{spec}' is not a complete checkpoint: {e.Message}");
        }
    }
}
