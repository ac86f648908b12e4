using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Training;

/// <summary>What the engine restored: the step and the data position saved with it (null for a fresh run).</summary>
public sealed record RestoredState(long Step, string? DataPosition);

/// <summary>
/// The training numerics as the DeviceTrainer drives them (<see cref="LiteVaeEngine"/>; tests use small fakes).
/// Every call happens on the DeviceTrainer's own pinned thread, one at a time.
/// </summary>
public interface ITrainingEngine : IDisposable
{
    /// <summary>"cpu", "cuda:0", …</summary>
    string Device { get; }

    /// <summary>Builds model, losses and optimizers for the experiment; restores <paramref name="resumeFrom"/>
    /// (a checkpoint directory) when given. Heavy: called on the first message, never in a constructor.</summary>
    RestoredState Initialize(string experimentHocon, string runDir, string? resumeFrom);

    long Step { get; }

    /// <summary>Steps of the whole run (restored with a checkpoint) whose update was skipped for non-finite gradients,
    /// as of the last window read.</summary>
    long SkippedSteps => 0;

    /// <summary>One optimisation step on a uint8 batch (the engine maps it to [-1, 1] on its device).
    /// Returns the losses only when <paramref name="readLosses"/> (reading them syncs the device).</summary>
    IReadOnlyDictionary<string, double>? TrainStep(Batch batch, bool readLosses);

    /// <summary>CPU copies of everything a checkpoint holds, with <paramref name="dataPosition"/> stored in
    /// the trainer state. The caller owns (and disposes) the snapshot; training may continue at once.</summary>
    ICheckpointSnapshot Snapshot(string dataPosition);
}

public interface ICheckpointSnapshot : IDisposable
{
    long Step { get; }
}

/// <summary>One complete checkpoint on disk.</summary>
public sealed record CheckpointEntry(long Step, string Path);

/// <summary>A checkpoint that a command named but that does not exist; the message says what does.</summary>
public sealed class CheckpointNotFoundException(string message) : Exception(message);

/// <summary>The run directory's checkpoints (<see cref="RunCheckpoints"/> over the atomic writer of src/Model).</summary>
public interface ICheckpointStore
{
    /// <summary>Writes atomically (temporary folder, fsync, rename) and returns the checkpoint directory.
    /// Runs on a background thread, never on the trainer's.</summary>
    string Write(ICheckpointSnapshot snapshot, string runDir, string reason);

    /// <summary>Complete checkpoints of the run, oldest first.</summary>
    IReadOnlyList<CheckpointEntry> List(string runDir);

    /// <summary><c>last</c>, <c>step-N</c> or a checkpoint directory → the directory of a complete checkpoint;
    /// throws <see cref="CheckpointNotFoundException"/> naming what exists.</summary>
    string Resolve(string runDir, string spec);

    /// <summary>Keeps <paramref name="checkpoint"/> from retention until the result is disposed (an evaluation
    /// waits for it or reads it); throws <see cref="CheckpointNotFoundException"/> when it is already gone.
    /// Null where nothing needs keeping (a store without retention, a checkpoint outside the run).</summary>
    IDisposable? Pin(string runDir, string checkpoint, string owner) => null;

    /// <summary>Drops pins left by an earlier coordinator (its evaluations died with it).</summary>
    void ClearPins(string runDir) { }
}

/// <summary>Makes the trainer's engine (one per DeviceTrainer incarnation).</summary>
public delegate ITrainingEngine TrainingEngineFactory();
