using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Akka.Streams;
using Akka.Streams.Dsl;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Data;

/// <summary>Settings of a data node (HOCON <c>litevae.data</c>). <paramref name="DecodeWorkers"/>: 0 takes the
/// experiment's <c>data.decode-workers</c>; more overrides it for this node's cores.</summary>
public sealed record DataNodeSettings(string Node, int MaxLeases, int ChunkBytes, TimeSpan Heartbeat, int DecodeWorkers = 0);

/// <summary>
/// A data node: builds the experiment's <see cref="DataPipeline"/> (its own index of the shards, which must give
/// the Coordinator's sample order), takes batch leases from the Coordinator, asks the pipeline for those spans
/// and delivers the batches to the trainer's intake: straight into its buffer in the same process, or as a
/// back-pressured StreamRef of chunks across nodes. A new plan, a broken stream or a restart voids every lease
/// it holds (the Coordinator hands them to other nodes).
/// </summary>
public sealed class DataNode : ReceiveActor, IWithTimers
{
    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed record Built(long Generation, DataPipeline? Pipeline, string? Error) : INoSerializationVerificationNeeded;
    private sealed record TransportEnded(long Generation, string Reason, bool Failed = true) : INoSerializationVerificationNeeded;
    private sealed record Offered(long Generation, ISourceRef<BatchChunk> Source) : INoSerializationVerificationNeeded;
    private sealed record LocalBuffer(long Generation, IntakeBuffer Buffer) : INoSerializationVerificationNeeded;
    private sealed record BatchSent(long Generation, long Start, int Samples) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DataNodeSettings _settings;
    private readonly ExperimentBinder _bind;
    private readonly IActorRef _coordinator;
    private readonly HashSet<long> _leases = [];   // starts of batches leased and not yet sent

    private DataProtocol.DataPlan? _plan;
    private DataPipeline? _pipeline;
    private PipelineTelemetry? _pipelineTelemetry;   // queue depths and sample counts of this node's pipeline, as metrics
    private Channel<(long Start, int Size)>? _requests;
    private CancellationTokenSource? _transport;
    private long _generation;
    private DateTime? _leaseRequestedAt;
    private string? _error;
    private long _batchesSent, _samplesSent, _badBefore;
    // The current node-to-node batch stream: its span (linked to the run's marker) and the bytes it carried.
    private System.Diagnostics.Activity? _streamSpan;
    private long _streamBytes, _streamBatches;

    public ITimerScheduler Timers { get; set; } = null!;

    public DataNode(DataNodeSettings settings, ExperimentBinder bind, IActorRef coordinator)
    {
        (_settings, _bind, _coordinator) = (settings, bind, coordinator);
        Receive<Tick>(_ => HandleTick());
        Receive<DataProtocol.DataPlan>(HandlePlan);
        Receive<Built>(HandleBuilt);
        Receive<DataProtocol.BatchLeased>(HandleLease);
        Receive<DataProtocol.NoLeaseAvailable>(_ => { });   // the Coordinator sends a lease once the trainer needs one
        Receive<LocalBuffer>(HandleLocalBuffer);
        Receive<Offered>(HandleOffered);
        Receive<BatchSent>(HandleSent);
        Receive<TransportEnded>(HandleTransportEnded);
    }

    public static Props Props(DataNodeSettings settings, ExperimentBinder bind, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new DataNode(settings, bind, coordinator));

    protected override void PreStart() => Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.Zero, _settings.Heartbeat);

    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        _coordinator.Tell(new DataProtocol.DataStreamBroken(Self, "", $"data node restarted after: {reason.Message}"));
    }

    protected override void PostStop() => Teardown();

    private void HandleTick()
    {
        var queues = _pipeline?.QueueDepths.Select(q => new QueueDepth(_settings.Node, q.Key, (int)q.Value(), 0)).ToList() ?? [];
        long bad = _badBefore + (_pipeline?.Stats.Bad ?? 0);
        _coordinator.Tell(new DataProtocol.DataNodeHeartbeat(Self, _settings.Node, _plan?.CoordinatorId, _plan?.PlanVersion ?? 0,
            _settings.MaxLeases, _leases.Count, _batchesSent, _samplesSent, bad, queues, _error));
        MaybeRequestLease(periodic: true);
    }

    private void HandlePlan(DataProtocol.DataPlan p)
    {
        if (_plan is not null && p.CoordinatorId == _plan.CoordinatorId && p.PlanVersion <= _plan.PlanVersion)
            return;
        _log.Info("data plan {0} of coordinator {1}: intake {2}", p.PlanVersion, p.CoordinatorId, p.Intake?.Path.ToString() ?? "none");
        Teardown();
        _plan = p;
        if (p.Intake is null) return;
        long gen = _generation;
        var bind = _bind;
        int workers = _settings.DecodeWorkers;
        // Indexing the shards reads their headers: off the actor's thread.
        Task.Run(() =>
        {
            var c = bind(p.ExperimentHocon, "experiment (from the coordinator)").Data;
            var index = c.LoadIndex(_ => { });
            var options = c.CreatePipelineOptions(index, DataUse.Train, workers > 0 ? workers : null);
            if (options.Order.Fingerprint != p.OrderFingerprint)
                return new Built(gen, null,
                    $"the shards of data.source differ on this node: its sample order is {options.Order.Fingerprint}, the coordinator's " +
                    $"{p.OrderFingerprint} ({index.Shards.Count} shards, {index.TotalSamples} samples here). Every node must see the same shard files.");
            return new Built(gen, DataPipeline.Start(options), null);
        }).PipeTo(Self, failure: e => new Built(gen, null, $"the data pipeline could not start: {e.GetBaseException().Message}"));
    }

    private void HandleBuilt(Built b)
    {
        if (b.Generation != _generation || _plan?.Intake is null)
        {
            b.Pipeline?.DisposeAsync().AsTask();
            return;
        }
        _error = b.Error;
        if (b.Error is not null)
        {
            _log.Error("{0}", b.Error);
            return;
        }
        var pipeline = _pipeline = b.Pipeline!;
        _pipelineTelemetry = PipelineTelemetry.Observe(pipeline, _settings.Node);
        _transport = new CancellationTokenSource();
        long gen = _generation;
        var self = Self;
        var requests = _requests = Channel.CreateUnbounded<(long, int)>(new UnboundedChannelOptions { SingleReader = true });
        Feed(pipeline, requests.Reader, _transport.Token).ContinueWith(t =>
        {
            if (t.IsFaulted) self.Tell(new TransportEnded(gen, $"data pipeline failed: {t.Exception!.GetBaseException().Message}"));
        }, TaskScheduler.Default);
        pipeline.Completion.ContinueWith(t =>
        {
            if (t.IsFaulted) self.Tell(new TransportEnded(gen, $"data pipeline failed: {t.Exception!.GetBaseException().Message}"));
        }, TaskScheduler.Default);
        if (_plan.Intake.Path.Address.HasLocalScope)
            _plan.Intake.Ask<LocalIntake>(GetLocalIntake.Instance, TimeSpan.FromSeconds(10))
                .PipeTo(Self, success: li => new LocalBuffer(gen, li.Buffer), failure: e => new TransportEnded(gen, $"local intake did not answer: {e.Message}"));
        else
            OfferRemote(_plan, pipeline, gen);
        MaybeRequestLease();
    }

    /// <summary>Asks the pipeline for the leased spans, in lease order (it waits while its prefetch is full).</summary>
    private static async Task Feed(DataPipeline pipeline, ChannelReader<(long Start, int Size)> requests, CancellationToken ct)
    {
        try
        {
            await foreach (var (start, size) in requests.ReadAllAsync(ct))
                await pipeline.RequestAsync(start, size, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private void OfferRemote(DataProtocol.DataPlan p, DataPipeline pipeline, long gen)
    {
        // The stream lasts as long as the plan (possibly the whole run): its span is a trace of its own, linked to
        // the run's marker, complete when the stream ends; it is nobody's parent (the receiver links to it).
        _streamSpan = LiteVaeTelemetry.Default.Data.StartHeldLinkedRoot("batch stream send", System.Diagnostics.ActivityKind.Producer, [p.TraceParent],
            [new(TelemetryTags.Node, _settings.Node), new(TelemetryTags.Peer, p.Intake!.Path.Address.ToString()), new("litevae.plan", p.PlanVersion)]);
        _streamBytes = _streamBatches = 0;
        var sent = LiteVaeTelemetry.Default.TransferBytes;
        var tags = new KeyValuePair<string, object?>[] { new(TelemetryTags.Direction, "sent"), new(TelemetryTags.Node, _settings.Node) };
        var self = Self;
        var (done, sourceRef) = ChannelSource.FromReader(pipeline.Batches)
            .SelectMany(b =>
            {
                try
                {
                    Interlocked.Increment(ref _streamBatches);
                    Interlocked.Add(ref _streamBytes, b.ByteLength);
                    sent.Add(b.ByteLength, tags);
                    self.Tell(new BatchSent(gen, b.Start, b.Count));
                    return BatchChunker.Split(b, _settings.ChunkBytes);
                }
                finally { b.Dispose(); }
            })
            .WatchTermination(Keep.Right)
            .ToMaterialized(StreamRefs.SourceRef<BatchChunk>(), Keep.Both)
            .Run(Context.Materializer());
        sourceRef.PipeTo(Self, success: r => new Offered(gen, r), failure: e => new TransportEnded(gen, $"stream ref failed: {e.Message}"));
        done.ContinueWith(t => self.Tell(new TransportEnded(gen,
            t.IsFaulted ? $"batch stream to {p.Intake!.Path.Address} failed: {t.Exception!.GetBaseException().Message}" : "batch stream completed",
            t.IsFaulted)),
            TaskScheduler.Default);
    }

    private void HandleOffered(Offered o)
    {
        if (o.Generation != _generation || _plan?.Intake is null) return;
        _plan.Intake.Tell(new DataProtocol.OfferBatchStream(o.Source, Self, _settings.Node, _plan.PlanVersion, TraceContext.Inject(_streamSpan)));
    }

    private void HandleLocalBuffer(LocalBuffer l)
    {
        if (l.Generation != _generation || _pipeline is null) return;
        var pipeline = _pipeline;
        var ct = _transport!.Token;
        long gen = l.Generation;
        var self = Self;
        Task.Run(async () =>
        {
            try
            {
                await foreach (var b in pipeline.Batches.ReadAllAsync(ct))
                {
                    long start = b.Start;
                    int count = b.Count;
                    l.Buffer.Add(b);
                    self.Tell(new BatchSent(gen, start, count));
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        }, ct).PipeTo(Self, success: () => new TransportEnded(gen, "local delivery ended"), failure: e => new TransportEnded(gen, $"local delivery failed: {e.Message}"));
    }

    private void HandleSent(BatchSent s)
    {
        if (s.Generation != _generation) return;
        _leases.Remove(s.Start);
        _batchesSent++;
        _samplesSent += s.Samples;
        MaybeRequestLease();
    }

    private void HandleTransportEnded(TransportEnded t)
    {
        if (t.Generation != _generation || _plan is null) return;
        if (t.Failed) _streamSpan.Fail(t.Reason);
        _log.Warning("{0}; voiding {1} lease(s) and starting over", t.Reason, _leases.Count);
        _coordinator.Tell(new DataProtocol.DataStreamBroken(Self, _plan.CoordinatorId, t.Reason));
        var plan = _plan;
        Teardown();
        HandlePlan(plan);
    }

    private void MaybeRequestLease(bool periodic = false)
    {
        if (_plan is null || _pipeline is null || _leases.Count >= _settings.MaxLeases) return;
        // One request at a time; the periodic tick repeats it in case an answer was lost.
        if (_leaseRequestedAt is { } at && (!periodic || DateTime.UtcNow - at < TimeSpan.FromSeconds(5))) return;
        _leaseRequestedAt = DateTime.UtcNow;
        _coordinator.Tell(new DataProtocol.RequestLease(Self, _plan.CoordinatorId, _plan.PlanVersion));
    }

    private void HandleLease(DataProtocol.BatchLeased l)
    {
        _leaseRequestedAt = null;
        if (_plan is null || _pipeline is null || _requests is null || l.CoordinatorId != _plan.CoordinatorId || l.PlanVersion != _plan.PlanVersion)
        {
            // A lease this node cannot work on: the Coordinator gives it to another node.
            _coordinator.Tell(new DataProtocol.DataStreamBroken(Self, l.CoordinatorId, "lease of a plan this node does not work on"));
            return;
        }
        _leases.Add(l.Start);
        _requests.Writer.TryWrite((l.Start, l.Size));
        MaybeRequestLease();
    }

    private void Teardown()
    {
        _generation++;
        if (_streamSpan is not null)
        {
            _streamSpan.SetTag(TelemetryTags.Bytes, Interlocked.Read(ref _streamBytes));
            _streamSpan.SetTag(TelemetryTags.Batches, Interlocked.Read(ref _streamBatches));
            _streamSpan.EndHeld();
            _streamSpan = null;
        }
        _leases.Clear();
        _requests?.Writer.TryComplete();
        _requests = null;
        _transport?.Cancel();
        _transport = null;
        _pipelineTelemetry?.Dispose();
        _pipelineTelemetry = null;
        if (_pipeline is not null)
        {
            _badBefore += _pipeline.Stats.Bad;
            var old = _pipeline;
            _pipeline = null;
            _ = old.DisposeAsync().AsTask();
        }
        _plan = null;
        _error = null;
        _leaseRequestedAt = null;
    }
}
