using Akka.Actor;

namespace LiteVae.Actors.Protocol;

/// <summary>Depth of one bounded queue of a pipeline stage (reported for status and back-pressure checks).</summary>
public sealed record QueueDepth(string Node, string Stage, int Depth, int Capacity);

/// <summary>Between data nodes and the Coordinator: registration, shard leases, their outcome.</summary>
public static class DataProtocol
{
    /// <summary>Data node → Coordinator, every heartbeat: registers the node and reports its state.</summary>
    /// <summary><paramref name="CoordinatorId"/>/<paramref name="PlanVersion"/> name the plan the node works on
    /// (null: none yet), so a Coordinator can re-send its current plan to a node that missed it.</summary>
    public sealed record DataNodeHeartbeat(
        IActorRef Worker, string Node, string? CoordinatorId, long PlanVersion, int MaxLeases, int ActiveLeases,
        long BatchesSent, long SamplesSent, long BadSamples, IReadOnlyList<QueueDepth> Queues) : ILiteVaeMessage
    {
        public bool Equals(DataNodeHeartbeat? o) =>
            o is not null && Worker.Equals(o.Worker) && Node == o.Node && CoordinatorId == o.CoordinatorId &&
            PlanVersion == o.PlanVersion && MaxLeases == o.MaxLeases && ActiveLeases == o.ActiveLeases &&
            BatchesSent == o.BatchesSent && SamplesSent == o.SamplesSent && BadSamples == o.BadSamples &&
            Queues.SequenceEqual(o.Queues);

        public override int GetHashCode() => HashCode.Combine(Worker, Node, PlanVersion);
    }

    /// <summary>
    /// Coordinator → data node: what to produce and where to send it. A higher <paramref name="PlanVersion"/>
    /// (a trainer restarted from a checkpoint, a new coordinator) cancels every lease of older plans.
    /// </summary>
    public sealed record DataPlan(
        string CoordinatorId, long PlanVersion, string ExperimentHocon, IActorRef? Intake, string? TraceParent)
        : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Data node → Coordinator: a reader slot is free; lease me a shard.</summary>
    public sealed record RequestLease(IActorRef Worker, string CoordinatorId, long PlanVersion)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Coordinator → data node: read shard <paramref name="Shard"/> of <paramref name="Epoch"/>,
    /// skipping the sample indices in <paramref name="Skip"/> (already consumed or known bad).</summary>
    public sealed record ShardLeased(
        string CoordinatorId, long PlanVersion, long LeaseId, int Epoch, int Shard, string ShardPath, long Seed,
        IndexRanges Skip, string? TraceParent) : ILiteVaeMessage, IWithCoordinatorId, ITraced;

    /// <summary>Coordinator → data node: nothing to lease now (waiting for a trainer, budget spent, …); ask again later.</summary>
    public sealed record NoLeaseAvailable(string CoordinatorId, long PlanVersion, string Reason)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → Coordinator: the whole shard was read; <paramref name="Bad"/> samples were skipped
    /// (decode errors), the rest were handed to the batch stream.</summary>
    public sealed record LeaseRead(string CoordinatorId, long LeaseId, int SamplesInShard, int Sent, IndexRanges Bad)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → Coordinator: the reader gave up on the lease (after its own restarts).</summary>
    public sealed record LeaseFailed(string CoordinatorId, long LeaseId, string Reason) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → Coordinator: its batch stream to the trainer broke (or the node restarted); its
    /// leases are void and what it had sent may be lost. An empty <paramref name="CoordinatorId"/> means any.</summary>
    public sealed record DataStreamBroken(IActorRef Worker, string CoordinatorId, string Reason)
        : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Data node → trainer intake: a back-pressured stream of batch chunks (Akka.Streams StreamRef).</summary>
    public sealed record OfferBatchStream(Akka.Streams.ISourceRef<BatchChunk> Source, IActorRef Worker, string Node, long PlanVersion)
        : ILiteVaeMessage;
}

/// <summary>
/// A piece of one uint8 batch on its way between nodes. Batches are cut into chunks so that no remoting
/// frame gets large (heartbeats interleave) and the stream buffers stay bounded in bytes. The first chunk
/// of a batch (<see cref="ChunkIndex"/> 0) carries the batch's shape and the ids of its samples.
/// </summary>
public sealed record BatchChunk(
    long PlanVersion, long BatchSeq, int ChunkIndex, int ChunkCount, int Count, int Height, int Width,
    IReadOnlyList<SampleId> Samples, ReadOnlyMemory<byte> Pixels) : ILiteVaeMessage
{
    public bool Equals(BatchChunk? o) =>
        o is not null && PlanVersion == o.PlanVersion && BatchSeq == o.BatchSeq && ChunkIndex == o.ChunkIndex &&
        ChunkCount == o.ChunkCount && Count == o.Count && Height == o.Height && Width == o.Width &&
        Samples.SequenceEqual(o.Samples) && Pixels.Span.SequenceEqual(o.Pixels.Span);

    public override int GetHashCode() => HashCode.Combine(PlanVersion, BatchSeq, ChunkIndex);
}
