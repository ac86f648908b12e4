using Akka.Actor;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Protocol;

/// <summary>Between a DeviceTrainer (and its Checkpointer) and the Coordinator.</summary>
public static class TrainerProtocol
{
    /// <summary>Trainer → Coordinator, repeated until <see cref="StartTraining"/> arrives. <paramref name="IntakeBatches"/>:
    /// how many batches its intake holds ahead of the one it trains next (data is never leased further ahead).</summary>
    public sealed record RegisterTrainer(IActorRef Trainer, IActorRef Intake, string Node, string Device, int IntakeBatches) : ILiteVaeMessage;

    /// <summary>Coordinator → trainer: build the model for this experiment, restore <paramref name="ResumeFrom"/>
    /// (a checkpoint directory) if given, and train until <paramref name="MaxSteps"/>, on the data of the sample order
    /// <paramref name="OrderFingerprint"/> (<paramref name="SamplesPerEpoch"/> samples an epoch). <paramref name="Home"/>: where
    /// the run lives (a trainer that does not share that disk keeps its own run directory and fetches the checkpoint).</summary>
    public sealed record StartTraining(
        string CoordinatorId, string ExperimentHocon, string RunDir, string? ResumeFrom, long MaxSteps,
        int CheckpointEvery, int LogEvery, string OrderFingerprint, long SamplesPerEpoch, string? TraceParent,
        TransferProtocol.RunHome? Home = null)
        : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Trainer → Coordinator: initialised (and restored); it trains next the batch starting at sample
    /// <paramref name="NextSample"/> of the run's order.</summary>
    public sealed record TrainerReady(string CoordinatorId, long Step, long NextSample) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Coordinator → trainer: step now.</summary>
    public sealed record BeginSteps(string CoordinatorId, long PlanVersion) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Trainer → Coordinator after each batch: every sample before <paramref name="NextSample"/> is trained (or skipped as bad).</summary>
    public sealed record BatchTrained(string CoordinatorId, long Step, long NextSample) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Trainer → Coordinator, once per log window. <paramref name="Samples"/> and <paramref name="DroppedBatches"/>
    /// count the whole run (they travel with every checkpoint).</summary>
    public sealed record TrainerProgress(
        string CoordinatorId, string Node, long Step, double ImagesPerSecond, double StepSeconds,
        double DataWaitFraction, IReadOnlyDictionary<string, double> Losses, int IntakeDepth, int IntakeCapacity,
        long NextSample, int Epoch, SampleCounts Samples, long DroppedBatches, bool Paused) : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(TrainerProgress? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Node == o.Node && Step == o.Step &&
            ImagesPerSecond.Equals(o.ImagesPerSecond) && StepSeconds.Equals(o.StepSeconds) &&
            DataWaitFraction.Equals(o.DataWaitFraction) && Losses.OrderBy(kv => kv.Key).SequenceEqual(o.Losses.OrderBy(kv => kv.Key)) &&
            IntakeDepth == o.IntakeDepth && IntakeCapacity == o.IntakeCapacity && NextSample == o.NextSample && Epoch == o.Epoch &&
            Samples.Equals(o.Samples) && DroppedBatches == o.DroppedBatches && Paused == o.Paused;

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Step);
    }

    /// <summary>Trainer → Coordinator: the step budget is spent (or a stop was asked, or <paramref name="Failure"/>: the
    /// run cannot go on, e.g. its data is mostly bad) and the final checkpoint is written.</summary>
    public sealed record TrainingFinished(string CoordinatorId, long Step, string? CheckpointPath, string? Failure = null)
        : ILiteVaeMessage, IWithCoordinatorId;

    public sealed record PauseTraining(string? TraceParent) : ILiteVaeMessage, ITraced;

    public sealed record ResumeTraining(string? TraceParent) : ILiteVaeMessage, ITraced;

    /// <summary>Write a checkpoint after the current step.</summary>
    public sealed record SaveCheckpointNow(string Reason, string? TraceParent) : ILiteVaeMessage, ITraced;

    /// <summary>Write a final checkpoint and stop stepping.</summary>
    public sealed record StopTraining(string Reason, string? TraceParent) : ILiteVaeMessage, ITraced;
}

/// <summary>Events of the Checkpointer (published to the Coordinator and the trainer).</summary>
public static class CheckpointEvents
{
    /// <summary>A checkpoint is complete on disk (written to a temporary folder, synced, renamed). <paramref name="Holder"/>:
    /// the checkpoint server of the node that wrote it (the run's home copies it from there unless it shares the disk).</summary>
    public sealed record CheckpointSaved(long Step, string Path, string Reason, double Seconds, IActorRef? Holder = null) : ILiteVaeMessage;

    public sealed record CheckpointFailed(long Step, string Reason) : ILiteVaeMessage;

    /// <summary>Coordinator → the Checkpointer that reported <paramref name="Step"/>: the checkpoint is complete in the run's
    /// directory at <paramref name="Path"/> (copied there when the trainer's node does not share it), or could not be stored
    /// there (<paramref name="Error"/>). A trainer node that is leaving waits for it, so its final checkpoint is not lost.</summary>
    public sealed record CheckpointStored(long Step, string? Path, string? Error = null) : ILiteVaeMessage;
}
