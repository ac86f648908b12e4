using Akka.Actor;

namespace LiteVae.Actors.Training;

/// <summary>Local: write a final checkpoint (CoordinatedShutdown); answered with CheckpointSaved or <see cref="FinalCheckpointSkipped"/>.</summary>
public sealed class FinalCheckpoint : INoSerializationVerificationNeeded
{
    public static readonly FinalCheckpoint Instance = new();
    private FinalCheckpoint() { }
}

public sealed record FinalCheckpointSkipped(string Reason) : INoSerializationVerificationNeeded;

/// <summary>Published on the local event stream when building or restoring the engine failed.</summary>
public sealed record TrainerStartFailed(string Reason) : INoSerializationVerificationNeeded;

/// <summary>Published on the local event stream once the engine is built (and restored).</summary>
public sealed record TrainerRestored(long Step, string? Checkpoint, string Device, long MaxSteps = 0) : INoSerializationVerificationNeeded;
