namespace LiteVae.Actors.Coordination;

/// <summary>
/// What the Coordinator runs, bound by the Host from the experiment config: the resolved experiment HOCON
/// (handed to trainer, data and eval nodes), the run directory, the data's sample order (its fingerprint and
/// samples per epoch; every data node must compute the same) with the global batch size, and the schedule.
/// </summary>
/// <param name="RunId">The run directory's id (<c>run-id</c>): nodes that read the same there share its disk (null: not checked,
/// every node is taken to share it).</param>
/// <param name="Retention">Which checkpoints the run keeps (the run's home applies it to checkpoints copied from trainer nodes).</param>
/// <param name="SourceFolders">The folders of the experiment's own local data and eval-data sources: paths in
/// commands may point into them (the run reads them anyway), besides the run directory and the data roots.</param>
public sealed record RunPlan(
    string ExperimentHocon, string RunDir, string OrderFingerprint, long SamplesPerEpoch, int Shards, int BatchSize, long MaxSteps,
    int CheckpointEvery, int LogEvery, bool EvalEachCheckpoint, IReadOnlyList<string>? SourceFolders = null, string? RunId = null,
    LiteVae.Model.Checkpoints.RetentionPolicy? Retention = null);

/// <param name="DataRoots">Folders besides the run directory that paths in commands may point into.</param>
/// <param name="OverdueLeaseAfter">A batch the trainer has waited for this long since it was leased is leased again.</param>
public sealed record CoordinatorSettings(TimeSpan Tick, TimeSpan OverdueLeaseAfter, bool LeaveClusterWhenStopped,
    IReadOnlyList<string>? DataRoots = null)
{
    /// <summary>This node's checkpoint server (null: no transfers, every node shares the run directory).</summary>
    public Akka.Actor.IActorRef? CheckpointServer { get; init; }
    /// <summary>How this node stores runs and copies checkpoints (shared or not).</summary>
    public Transfer.StorageSettings Storage { get; init; } = Transfer.StorageSettings.SharedDisk;
    /// <summary>How many trainers form the data-parallel group (one: the plain single-trainer run).</summary>
    public Distributed.GroupSettings Group { get; init; } = Distributed.GroupSettings.Single;
    /// <summary>Evaluation jobs waiting for an eval node; more requests are refused until some finish.</summary>
    public const int MaxQueuedEvaluations = 16;

    public static readonly CoordinatorSettings Default = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), true);
}

/// <summary>Published on the Coordinator's local event stream when the run has finished (budget or stop, or
/// <paramref name="Failed"/>: it could not go on, <paramref name="Reason"/> says why).</summary>
public sealed record RunFinished(long Step, string? CheckpointPath, string Reason, bool Failed = false) : Akka.Actor.INoSerializationVerificationNeeded;
