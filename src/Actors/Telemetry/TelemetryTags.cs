namespace LiteVae.Actors.Telemetry;

/// <summary>
/// Attribute names on LiteVae spans and metrics. Metric tags stay low-cardinality (run, role, node,
/// stage, device, term); step ranges, shards, paths and counts go on spans only.
/// </summary>
public static class TelemetryTags
{
    public const string RunId = "litevae.run_id";
    public const string Role = "litevae.role";
    public const string Node = "litevae.node";
    public const string Device = "litevae.device";
    public const string Stage = "litevae.stage";
    public const string LossTerm = "litevae.loss.term";
    public const string Phase = "litevae.phase";
    public const string Direction = "litevae.direction";
    public const string Outcome = "litevae.outcome";

    // Span-only attributes.
    public const string StepFirst = "litevae.step.first";
    public const string StepLast = "litevae.step.last";
    public const string Step = "litevae.step";
    public const string Epoch = "litevae.epoch";
    public const string Shard = "litevae.shard";
    public const string ShardPath = "litevae.shard.path";
    public const string Bytes = "litevae.bytes";
    public const string Samples = "litevae.samples";
    public const string BadSamples = "litevae.bad_samples";
    public const string Batches = "litevae.batches";
    public const string Checkpoint = "litevae.checkpoint";
    public const string JobId = "litevae.eval.job_id";
    public const string Command = "litevae.command";
    public const string Peer = "litevae.peer";
    public const string Reason = "litevae.reason";
}
