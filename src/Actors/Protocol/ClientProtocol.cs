using LiteVae.Model.Metrics;

namespace LiteVae.Actors.Protocol;

/// <summary>A cluster member as the status command shows it.</summary>
public sealed record MemberInfo(string Address, string Status, IReadOnlyList<string> Roles, bool Reachable)
{
    public bool Equals(MemberInfo? o) =>
        o is not null && Address == o.Address && Status == o.Status && Roles.SequenceEqual(o.Roles) && Reachable == o.Reachable;

    public override int GetHashCode() => Address.GetHashCode();
}

/// <summary>How the run's samples fared. Trained, skipped and dropped count the whole run (saved with every
/// checkpoint, restored on resume); <paramref name="LeasesReissued"/> counts since this coordinator started.
/// <paramref name="DroppedBatches"/>: batches that reached the trainer after it had trained their span (a node
/// was replaced while they were in flight) and were not trained again. <paramref name="SkippedByReason"/>: bad
/// samples by reason (kebab-case names).</summary>
public sealed record DataAccounting(
    int Epoch, long NextSample, long SamplesTrained, long SamplesSkipped, long DroppedBatches, long LeasesReissued,
    IReadOnlyDictionary<string, long> SkippedByReason)
{
    public bool Equals(DataAccounting? o) =>
        o is not null && Epoch == o.Epoch && NextSample == o.NextSample && SamplesTrained == o.SamplesTrained &&
        SamplesSkipped == o.SamplesSkipped && DroppedBatches == o.DroppedBatches && LeasesReissued == o.LeasesReissued &&
        SkippedByReason.OrderBy(kv => kv.Key).SequenceEqual(o.SkippedByReason.OrderBy(kv => kv.Key));

    public override int GetHashCode() => HashCode.Combine(NextSample, SamplesTrained);
}

/// <summary>An evaluation job as the Coordinator tracks it.</summary>
public sealed record EvaluationStatus(
    string JobId, string State, string CheckpointPath, string? Node, IReadOnlyList<MetricValue> Metrics,
    string? Error, string? ReportPath) : ILiteVaeMessage
{
    public const string Queued = "queued", Running = "running", Done = "done", Failed = "failed";

    public bool Equals(EvaluationStatus? o) =>
        o is not null && JobId == o.JobId && State == o.State && CheckpointPath == o.CheckpointPath && Node == o.Node &&
        Metrics.SequenceEqual(o.Metrics) && Error == o.Error && ReportPath == o.ReportPath;

    public override int GetHashCode() => JobId.GetHashCode();
}

/// <summary>
/// What <c>litevae status|eval|checkpoint|stop --cluster</c> send to a node's gateway, and the answers.
/// Every command gets either its answer or a <see cref="CommandRejected"/> with a reason a user can act on.
/// </summary>
public static class ClientProtocol
{
    public sealed record GetClusterStatus(string? TraceParent) : ILiteVaeMessage, ITraced;

    public sealed record ClusterStatus(
        string RunState, string RunDir, long Step, long MaxSteps, double ImagesPerSecond, double DataWaitFraction,
        IReadOnlyDictionary<string, double> Losses, IReadOnlyList<QueueDepth> Queues, IReadOnlyList<MemberInfo> Members,
        IReadOnlyList<long> CheckpointSteps, DataAccounting Data, IReadOnlyList<EvaluationStatus> Evaluations)
        : ILiteVaeMessage
    {
        public bool Equals(ClusterStatus? o) =>
            o is not null && RunState == o.RunState && RunDir == o.RunDir && Step == o.Step && MaxSteps == o.MaxSteps &&
            ImagesPerSecond.Equals(o.ImagesPerSecond) && DataWaitFraction.Equals(o.DataWaitFraction) &&
            Losses.OrderBy(kv => kv.Key).SequenceEqual(o.Losses.OrderBy(kv => kv.Key)) &&
            Queues.SequenceEqual(o.Queues) && Members.SequenceEqual(o.Members) &&
            CheckpointSteps.SequenceEqual(o.CheckpointSteps) && Data == o.Data && Evaluations.SequenceEqual(o.Evaluations);

        public override int GetHashCode() => HashCode.Combine(RunState, Step);
    }

    /// <summary><paramref name="Checkpoint"/> is <c>last</c>, <c>step-N</c> or a checkpoint directory;
    /// <paramref name="Data"/> overrides the experiment's evaluation shards.</summary>
    public sealed record RequestEvaluation(string Checkpoint, string? Data, string? TraceParent) : ILiteVaeMessage, ITraced;

    public sealed record EvaluationAccepted(string JobId, string CheckpointPath) : ILiteVaeMessage;

    public sealed record GetEvaluation(string JobId) : ILiteVaeMessage;

    public sealed record RequestCheckpoint(string? TraceParent) : ILiteVaeMessage, ITraced;

    public sealed record RequestStop(string? TraceParent) : ILiteVaeMessage, ITraced;

    public sealed record RunStopped(long Step, string? CheckpointPath) : ILiteVaeMessage;

    public sealed record CommandRejected(string Command, string Reason) : ILiteVaeMessage;
}
