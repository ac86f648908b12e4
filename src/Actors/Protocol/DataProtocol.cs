using Akka.Actor;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Protocol;

/// <summary>Depth of one bounded queue of a pipeline stage (reported for status and back-pressure checks).</summary>
public sealed record QueueDepth(string Node, string Stage, int Depth, int Capacity);

/// <summary>
/// Between data nodes and the Coordinator. The run's samples are one numbered sequence (the experiment's
/// sample order, the same on every node); the Coordinator leases spans of it, whole batches, to data nodes,
/// which read, decode and send those batches to the trainer. Which node made a batch never changes what is
/// in it.
/// </summary>
public static class DataProtocol
{
    /// <summary>Data node → Coordinator, every heartbeat: registers the node and reports its state.
    /// <paramref name="CoordinatorId"/>/<paramref name="PlanVersion"/> name the plan the node works on (null: none
    /// yet), so a Coordinator can re-send its current plan to a node that missed it. <paramref name="Error"/>: why
    /// the node cannot work on the plan (its shards differ from the coordinator's, say).</summary>
    public sealed record DataNodeHeartbeat(
        IActorRef Worker, string Node, string? CoordinatorId, long PlanVersion, int MaxLeases, int ActiveLeases,
        long BatchesSent, long SamplesSent, long BadSamples, IReadOnlyList<QueueDepth> Queues, string? Error = null) : ILiteVaeMessage
    {
        public bool Equals(DataNodeHeartbeat? o) =>
            o is not null && Worker.Equals(o.Worker) && Node == o.Node && CoordinatorId == o.CoordinatorId &&
            PlanVersion == o.PlanVersion && MaxLeases == o.MaxLeases && ActiveLeases == o.ActiveLeases &&
            BatchesSent == o.BatchesSent && SamplesSent == o.SamplesSent && BadSamples == o.BadSamples &&
            Queues.SequenceEqual(o.Queues) && Error == o.Error;

        public override int GetHashCode() => HashCode.Combine(Worker, Node, PlanVersion);
    }

    /// <summary>
    /// Coordinator → data node: what to produce and where to send it. <paramref name="OrderFingerprint"/> is the
    /// sample order every node must compute from its own copy of the shards (a node whose shards differ refuses).
    /// A higher <paramref name="PlanVersion"/> (a trainer restarted from a checkpoint, a new coordinator) voids
    /// every lease of older plans.
    /// </summary>
    public sealed record DataPlan(
        string CoordinatorId, long PlanVersion, string ExperimentHocon, IActorRef? Intake, string OrderFingerprint, string? TraceParent)
        : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Data node → Coordinator: a lease slot is free; lease me batches.</summary>
    public sealed record RequestLease(IActorRef Worker, string CoordinatorId, long PlanVersion)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Coordinator → data node: make the batch of the <paramref name="Size"/> samples starting at sample
    /// <paramref name="Start"/> of the run's order.</summary>
    public sealed record BatchLeased(string CoordinatorId, long PlanVersion, long LeaseId, long Start, int Size, string? TraceParent)
        : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Coordinator → data node: nothing to lease now (waiting for a trainer, far enough ahead, …); ask again later.</summary>
    public sealed record NoLeaseAvailable(string CoordinatorId, long PlanVersion, string Reason)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → Coordinator: its batch stream to the trainer broke (or the node restarted); its
    /// leases are void and what it had sent may be lost. An empty <paramref name="CoordinatorId"/> means any.</summary>
    public sealed record DataStreamBroken(IActorRef Worker, string CoordinatorId, string Reason)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → trainer intake: a back-pressured stream of batch chunks (Akka.Streams StreamRef).
    /// <paramref name="TraceParent"/>: the sender's stream span, which the receiver's links to.</summary>
    public sealed record OfferBatchStream(Akka.Streams.ISourceRef<BatchChunk> Source, IActorRef Worker, string Node, long PlanVersion,
        string? TraceParent = null) : ILiteVaeMessage, ITraced;
}

/// <summary>
/// A piece of one uint8 batch on its way between nodes. Batches are cut into chunks so that no remoting
/// frame gets large (heartbeats interleave) and the stream buffers stay bounded in bytes. The first chunk
/// of a batch (<see cref="ChunkIndex"/> 0) carries the batch's samples and skipped samples.
/// </summary>
public sealed record BatchChunk(
    long Start, int Span, int ChunkIndex, int ChunkCount, int Height, int Width,
    IReadOnlyList<SampleInfo> Samples, IReadOnlyList<SkippedSample> Skipped, ReadOnlyMemory<byte> Pixels) : ILiteVaeMessage
{
    public bool Equals(BatchChunk? o) =>
        o is not null && Start == o.Start && Span == o.Span && ChunkIndex == o.ChunkIndex && ChunkCount == o.ChunkCount &&
        Height == o.Height && Width == o.Width && Samples.SequenceEqual(o.Samples) && Skipped.SequenceEqual(o.Skipped) &&
        Pixels.Span.SequenceEqual(o.Pixels.Span);

    public override int GetHashCode() => HashCode.Combine(Start, ChunkIndex);
}
