using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Akka.Streams;
using Akka.Streams.Dsl;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>Settings of a data node (HOCON <c>litevae.data</c>).</summary>
public sealed record DataNodeSettings(string Node, int MaxLeases, PipelineBounds Bounds, int ChunkBytes, TimeSpan Heartbeat);

/// <summary>
/// A data node: asks the Coordinator for shard leases, reads them with supervised
/// <see cref="ShardReaderActor"/>s into a <see cref="BatchPipeline"/> (decode ×W → batch), and delivers the
/// batches to the trainer's intake: straight into its channel in the same process, or as a back-pressured
/// StreamRef of chunks across nodes. A new plan, a broken stream or a restart voids every lease it holds
/// (the Coordinator re-leases them, skipping what was consumed).
/// </summary>
public sealed class DataNode : ReceiveActor, IWithTimers
{
    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed record Drained(long Generation, LeaseTracker Lease) : INoSerializationVerificationNeeded;
    private sealed record TransportEnded(long Generation, string Reason) : INoSerializationVerificationNeeded;
    private sealed record Offered(long Generation, ISourceRef<BatchChunk> Source) : INoSerializationVerificationNeeded;
    private sealed record LocalWriter(long Generation, ChannelWriter<PixelBatch> Writer) : INoSerializationVerificationNeeded;

    private sealed record LeaseEntry(LeaseTracker Tracker, IActorRef Reader) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DataNodeSettings _settings;
    private readonly DataPipelineFactory _factory;
    private readonly IActorRef _coordinator;
    private readonly Dictionary<long, LeaseEntry> _leases = new();

    private DataProtocol.DataPlan? _plan;
    private (string Hocon, DataPipelineParts Parts)? _parts;
    private BatchPipeline? _pipeline;
    private CancellationTokenSource? _transport;
    private long _generation;
    private DateTime? _leaseRequestedAt;
    private long _batchesSent, _samplesSent, _badBefore, _seq;

    public ITimerScheduler Timers { get; set; } = null!;

    public DataNode(DataNodeSettings settings, DataPipelineFactory factory, IActorRef coordinator)
    {
        (_settings, _factory, _coordinator) = (settings, factory, coordinator);
        Receive<Tick>(_ => HandleTick());
        Receive<DataProtocol.DataPlan>(HandlePlan);
        Receive<DataProtocol.ShardLeased>(HandleLease);
        Receive<DataProtocol.NoLeaseAvailable>(_ => _leaseRequestedAt = null);
        Receive<Drained>(HandleDrained);
        Receive<Terminated>(HandleReaderStopped);
        Receive<LocalWriter>(HandleLocalWriter);
        Receive<Offered>(HandleOffered);
        Receive<TransportEnded>(HandleTransportEnded);
    }

    public static Props Props(DataNodeSettings settings, DataPipelineFactory factory, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new DataNode(settings, factory, coordinator));

    /// <summary>Readers restart on failure (resuming their shard); after 2 restarts a minute they stop and
    /// their lease goes back to the Coordinator.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(2, TimeSpan.FromMinutes(1), _ => Directive.Restart);

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.Zero, _settings.Heartbeat);
    }

    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        _coordinator.Tell(new DataProtocol.DataStreamBroken(Self, "", $"data node restarted after: {reason.Message}"));
    }

    protected override void PostStop() => Teardown();

    private void HandleTick()
    {
        var queues = _pipeline?.Depths(_settings.Node) ?? [];
        long bad = _badBefore + (_pipeline?.BadSamples ?? 0);
        _coordinator.Tell(new DataProtocol.DataNodeHeartbeat(Self, _settings.Node, _plan?.CoordinatorId, _plan?.PlanVersion ?? 0,
            _settings.MaxLeases, _leases.Count, _batchesSent, _samplesSent, bad, queues));
        MaybeRequestLease();
    }

    private void HandlePlan(DataProtocol.DataPlan p)
    {
        if (_plan is not null && p.CoordinatorId == _plan.CoordinatorId && p.PlanVersion <= _plan.PlanVersion)
            return;
        _log.Info("data plan {0} of coordinator {1}: intake {2}", p.PlanVersion, p.CoordinatorId, p.Intake?.Path.ToString() ?? "none");
        Teardown();
        _plan = p;
        if (p.Intake is null) return;
        Build(p);
    }

    private void Build(DataProtocol.DataPlan p)
    {
        if (_parts?.Hocon != p.ExperimentHocon)
            _parts = (p.ExperimentHocon, _factory(p.ExperimentHocon));
        _pipeline = new BatchPipeline(_parts.Value.Parts, _settings.Bounds, p.PlanVersion);
        _transport = new CancellationTokenSource();
        long gen = _generation;
        var self = Self;
        _pipeline.Completion.ContinueWith(t =>
        {
            if (t.IsFaulted) self.Tell(new TransportEnded(gen, $"pipeline stage crashed: {t.Exception!.GetBaseException().Message}"));
        }, TaskScheduler.Default);
        if (p.Intake!.Path.Address.HasLocalScope)
            p.Intake.Ask<LocalIntake>(GetLocalIntake.Instance, TimeSpan.FromSeconds(10))
                .PipeTo(Self, success: li => new LocalWriter(gen, li.Writer), failure: e => new TransportEnded(gen, $"local intake did not answer: {e.Message}"));
        else
            OfferRemote(p, gen);
        MaybeRequestLease();
    }

    private void OfferRemote(DataProtocol.DataPlan p, long gen)
    {
        var pipeline = _pipeline!;
        var (done, sourceRef) = ChannelSource.FromReader(pipeline.Output)
            .SelectMany(b =>
            {
                try
                {
                    Interlocked.Increment(ref _batchesSent);
                    Interlocked.Add(ref _samplesSent, b.Count);
                    return BatchChunker.Split(b, Interlocked.Increment(ref _seq), _settings.ChunkBytes);
                }
                finally { b.Dispose(); }
            })
            .WatchTermination(Keep.Right)
            .ToMaterialized(StreamRefs.SourceRef<BatchChunk>(), Keep.Both)
            .Run(Context.Materializer());
        sourceRef.PipeTo(Self, success: r => new Offered(gen, r), failure: e => new TransportEnded(gen, $"stream ref failed: {e.Message}"));
        var self = Self;
        done.ContinueWith(t => self.Tell(new TransportEnded(gen,
            t.IsFaulted ? $"batch stream to {p.Intake!.Path.Address} failed: {t.Exception!.GetBaseException().Message}" : "batch stream completed")),
            TaskScheduler.Default);
    }

    private void HandleOffered(Offered o)
    {
        if (o.Generation != _generation || _plan?.Intake is null) return;
        _plan.Intake.Tell(new DataProtocol.OfferBatchStream(o.Source, Self, _settings.Node, _plan.PlanVersion));
    }

    private void HandleLocalWriter(LocalWriter w)
    {
        if (w.Generation != _generation || _pipeline is null) return;
        var output = _pipeline.Output;
        var ct = _transport!.Token;
        long gen = w.Generation;
        Pump(output, w.Writer, ct).PipeTo(Self,
            success: () => new TransportEnded(gen, "local intake closed"),
            failure: e => new TransportEnded(gen, $"local delivery failed: {e.Message}"));
    }

    private async Task Pump(ChannelReader<PixelBatch> from, ChannelWriter<PixelBatch> to, CancellationToken ct)
    {
        try
        {
            await foreach (var b in from.ReadAllAsync(ct))
            {
                try { await to.WriteAsync(b, ct); }
                catch { b.Dispose(); throw; }
                Interlocked.Increment(ref _batchesSent);
                Interlocked.Add(ref _samplesSent, b.Count);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (ChannelClosedException) { }
    }

    private void HandleTransportEnded(TransportEnded t)
    {
        if (t.Generation != _generation || _plan is null) return;
        _log.Warning("{0}; voiding {1} lease(s) and starting a new stream", t.Reason, _leases.Count);
        _coordinator.Tell(new DataProtocol.DataStreamBroken(Self, _plan.CoordinatorId, t.Reason));
        var plan = _plan;
        Teardown();
        _plan = plan;
        if (plan.Intake is not null) Build(plan);
    }

    private void MaybeRequestLease()
    {
        if (_plan is null || _pipeline is null || _leases.Count >= _settings.MaxLeases) return;
        if (_leaseRequestedAt is { } at && DateTime.UtcNow - at < TimeSpan.FromSeconds(5)) return;
        _leaseRequestedAt = DateTime.UtcNow;
        _coordinator.Tell(new DataProtocol.RequestLease(Self, _plan.CoordinatorId, _plan.PlanVersion));
    }

    private void HandleLease(DataProtocol.ShardLeased l)
    {
        _leaseRequestedAt = null;
        if (_plan is null || _pipeline is null || l.CoordinatorId != _plan.CoordinatorId || l.PlanVersion != _plan.PlanVersion)
        {
            // A lease of a plan this node no longer works on: give it back at once.
            _coordinator.Tell(new DataProtocol.LeaseFailed(l.CoordinatorId, l.LeaseId, "lease of a superseded plan"));
            return;
        }
        long gen = _generation;
        var self = Self;
        var tracker = new LeaseTracker(l, t => self.Tell(new Drained(gen, t)));
        var reader = Context.ActorOf(ShardReaderActor.Props(tracker, _pipeline, _parts!.Value.Parts.Reader), $"reader-{l.LeaseId}");
        Context.Watch(reader);
        _leases[l.LeaseId] = new LeaseEntry(tracker, reader);
        MaybeRequestLease();
    }

    private void HandleDrained(Drained d)
    {
        if (d.Generation != _generation || !_leases.Remove(d.Lease.Lease.LeaseId, out var entry)) return;
        Context.Unwatch(entry.Reader);
        var (total, sent, bad) = d.Lease.Outcome();
        _coordinator.Tell(new DataProtocol.LeaseRead(d.Lease.Lease.CoordinatorId, d.Lease.Lease.LeaseId, total, sent, bad));
        MaybeRequestLease();
    }

    private void HandleReaderStopped(Terminated t)
    {
        var hit = _leases.FirstOrDefault(kv => kv.Value.Reader.Equals(t.ActorRef));
        if (hit.Value is null || hit.Value.Tracker.Counts is not null) return;   // finished reading: Drained follows
        _leases.Remove(hit.Key);
        hit.Value.Tracker.Cancel.Cancel();
        _log.Warning("reader of shard {0} gave up; returning lease {1}", hit.Value.Tracker.Lease.ShardPath, hit.Key);
        _coordinator.Tell(new DataProtocol.LeaseFailed(hit.Value.Tracker.Lease.CoordinatorId, hit.Key, "reader failed repeatedly"));
        MaybeRequestLease();
    }

    private void Teardown()
    {
        _generation++;
        foreach (var (_, e) in _leases)
        {
            e.Tracker.Cancel.Cancel();
            Context.Unwatch(e.Reader);
            Context.Stop(e.Reader);
        }
        _leases.Clear();
        _transport?.Cancel();
        _transport = null;
        if (_pipeline is not null)
        {
            _badBefore += _pipeline.BadSamples;
            var old = _pipeline;
            _pipeline = null;
            _ = old.DisposeAsync().AsTask();
        }
        _plan = null;
        _leaseRequestedAt = null;
    }
}
