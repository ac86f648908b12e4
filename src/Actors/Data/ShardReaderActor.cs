using Akka.Actor;
using Akka.Event;

namespace LiteVae.Actors.Data;

/// <summary>
/// The ShardReader stage for one lease: streams the shard into the node's <see cref="BatchPipeline"/> on a
/// detached task (the mailbox stays free). A failed read throws here so the DataNode's supervisor restarts
/// this actor, which resumes the shard skipping what it already emitted; after too many restarts it stops
/// and the DataNode returns the lease to the Coordinator.
/// </summary>
public sealed class ShardReaderActor : ReceiveActor
{
    private sealed record ReadDone(ShardReadCounts Counts) : INoSerializationVerificationNeeded;
    private sealed record ReadCrashed(Exception Error) : INoSerializationVerificationNeeded;

    /// <summary>Thrown inside the actor to let supervision restart it.</summary>
    public sealed class ShardReadException(string message, Exception inner) : Exception(message, inner);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly LeaseTracker _lease;
    private readonly BatchPipeline _pipeline;
    private readonly IShardReader _reader;

    public ShardReaderActor(LeaseTracker lease, BatchPipeline pipeline, IShardReader reader)
    {
        (_lease, _pipeline, _reader) = (lease, pipeline, reader);
        Receive<ReadDone>(HandleDone);
        Receive<ReadCrashed>(m => throw new ShardReadException(
            $"reading shard {_lease.Lease.ShardPath} (epoch {_lease.Lease.Epoch}) failed: {m.Error.Message}", m.Error));
    }

    public static Props Props(LeaseTracker lease, BatchPipeline pipeline, IShardReader reader) =>
        Akka.Actor.Props.Create(() => new ShardReaderActor(lease, pipeline, reader));

    protected override void PreStart()
    {
        var l = _lease.Lease;
        var request = new ShardReadRequest(l.Epoch, l.Shard, l.ShardPath, l.Seed, _lease.SkipForRestart());
        var counts = new ShardReadCounts();
        var ct = _lease.Cancel.Token;
        Run(request, counts, ct).PipeTo(Self, success: () => new ReadDone(counts), failure: e => new ReadCrashed(e));
    }

    private async Task Run(ShardReadRequest request, ShardReadCounts counts, CancellationToken ct)
    {
        await foreach (var sample in _reader.ReadAsync(request, counts, ct).WithCancellation(ct))
            await _pipeline.WriteAsync(sample, _lease, ct);
    }

    private void HandleDone(ReadDone m)
    {
        _log.Debug("shard {0} epoch {1}: {2} samples, {3} bad", _lease.Lease.ShardPath, _lease.Lease.Epoch, m.Counts.Total, m.Counts.Bad.Count);
        _lease.ReadFinished(m.Counts);
        Context.Stop(Self);
    }
}
