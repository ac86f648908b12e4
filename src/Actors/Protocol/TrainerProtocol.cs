using Akka.Actor;

namespace LiteVae.Actors.Protocol;

/// <summary>Samples a trainer has consumed, per (epoch, shard); saved in every checkpoint so a resumed run
/// knows exactly which samples its weights have seen.</summary>
public sealed record ShardConsumption(int Epoch, int Shard, IndexRanges Consumed);

/// <summary>The trainer's data position: every epoch from <paramref name="FirstOpenEpoch"/> on, with the
/// samples consumed so far, and the running count of samples delivered again after they were trained
/// (dropped by the trainer, never trained twice; the name is kept for checkpoints written before).</summary>
public sealed record ConsumedState(int FirstOpenEpoch, IReadOnlyList<ShardConsumption> Shards, long Duplicates)
{
    public static readonly ConsumedState Empty = new(0, [], 0);

    public bool Equals(ConsumedState? o) =>
        o is not null && FirstOpenEpoch == o.FirstOpenEpoch && Duplicates == o.Duplicates && Shards.SequenceEqual(o.Shards);

    public override int GetHashCode() => HashCode.Combine(FirstOpenEpoch, Shards.Count, Duplicates);
}

/// <summary>Between a DeviceTrainer (and its Checkpointer) and the Coordinator.</summary>
public static class TrainerProtocol
{
    /// <summary>Trainer → Coordinator, repeated until <see cref="StartTraining"/> arrives.</summary>
    public sealed record RegisterTrainer(IActorRef Trainer, IActorRef Intake, string Node, string Device) : ILiteVaeMessage;

    /// <summary>Coordinator → trainer: build the model for this experiment, restore <paramref name="ResumeFrom"/>
    /// (a checkpoint directory) if given, and train until <paramref name="MaxSteps"/>.</summary>
    public sealed record StartTraining(
        string CoordinatorId, string ExperimentHocon, string RunDir, string? ResumeFrom, long MaxSteps,
        int CheckpointEvery, int LogEvery, string? TraceParent) : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Trainer → Coordinator: initialised (and restored); here is what the weights have seen.</summary>
    public sealed record TrainerReady(string CoordinatorId, long Step, ConsumedState Consumed) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Coordinator → trainer: step now. Batches of plans older than <paramref name="PlanVersion"/> are stale.</summary>
    public sealed record BeginSteps(string CoordinatorId, long PlanVersion) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Trainer → Coordinator after each step: the samples that step consumed.</summary>
    public sealed record SamplesConsumed(string CoordinatorId, long Step, IReadOnlyList<SampleId> Samples)
        : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(SamplesConsumed? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Step == o.Step && Samples.SequenceEqual(o.Samples);

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Step);
    }

    /// <summary>Trainer → Coordinator: a batch was dropped because it repeated a trained sample; its samples
    /// that were not trained must be read again.</summary>
    public sealed record SamplesDropped(string CoordinatorId, IReadOnlyList<SampleId> Samples)
        : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(SamplesDropped? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Samples.SequenceEqual(o.Samples);

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Samples.Count);
    }

    /// <summary>Coordinator → trainer: every sample of this epoch is consumed or known bad; forget it.</summary>
    public sealed record EpochClosed(string CoordinatorId, int Epoch) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Trainer → Coordinator, once per log window.</summary>
    public sealed record TrainerProgress(
        string CoordinatorId, string Node, long Step, double ImagesPerSecond, double StepSeconds,
        double DataWaitFraction, IReadOnlyDictionary<string, double> Losses, int IntakeDepth, int IntakeCapacity,
        long DiscardedBatches, long Duplicates, bool Paused) : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(TrainerProgress? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Node == o.Node && Step == o.Step &&
            ImagesPerSecond.Equals(o.ImagesPerSecond) && StepSeconds.Equals(o.StepSeconds) &&
            DataWaitFraction.Equals(o.DataWaitFraction) && Losses.OrderBy(kv => kv.Key).SequenceEqual(o.Losses.OrderBy(kv => kv.Key)) &&
            IntakeDepth == o.IntakeDepth && IntakeCapacity == o.IntakeCapacity && DiscardedBatches == o.DiscardedBatches &&
            Duplicates == o.Duplicates && Paused == o.Paused;

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Step);
    }

    /// <summary>Trainer → Coordinator: the step budget is spent (or a stop was asked) and the final checkpoint is written.</summary>
    public sealed record TrainingFinished(string CoordinatorId, long Step, string? CheckpointPath) : ILiteVaeMessage, IWithCoordinatorId;

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
    /// <summary>A checkpoint is complete on disk (written to a temporary folder, synced, renamed).</summary>
    public sealed record CheckpointSaved(long Step, string Path, string Reason, double Seconds) : ILiteVaeMessage;

    public sealed record CheckpointFailed(long Step, string Reason) : ILiteVaeMessage;
}
