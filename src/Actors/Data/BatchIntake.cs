using Akka.Actor;
using Akka.Event;
using Akka.Streams;
using Akka.Streams.Dsl;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Actors.Data;

/// <summary>Ask a trainer's intake for its buffer (answered only within one process: data nodes there add batches directly).</summary>
public sealed class GetLocalIntake : INoSerializationVerificationNeeded
{
    public static readonly GetLocalIntake Instance = new();
    private GetLocalIntake() { }
}

/// <summary>The answer to <see cref="GetLocalIntake"/>.</summary>
public sealed record LocalIntake(IntakeBuffer Buffer) : INoSerializationVerificationNeeded;

/// <summary>
/// The trainer node's end of the data path. Data nodes in the same process get the <see cref="IntakeBuffer"/>
/// itself (<see cref="GetLocalIntake"/>) and add their batches straight into it; remote data nodes offer
/// StreamRefs of chunks, which are pulled one chunk at a time, reassembled and added. The Coordinator never
/// leases batches beyond the buffer's capacity, so adding never has to wait.
/// </summary>
public sealed class BatchIntake : ReceiveActor
{
    private sealed record StreamEnded(string Node, string Reason, bool Failed, System.Diagnostics.Activity? Span, StreamCount Count)
        : INoSerializationVerificationNeeded;

    private sealed class StreamCount { public long Bytes, Batches; }

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IntakeBuffer _buffer;
    private readonly CancellationTokenSource _cts = new();
    private int _streams;

    /// <summary>Bytes received across nodes (for the pipeline benchmark and metrics).</summary>
    public static long BytesReceived;

    public BatchIntake(IntakeBuffer buffer)
    {
        _buffer = buffer;
        Receive<GetLocalIntake>(_ => Sender.Tell(new LocalIntake(_buffer)));
        Receive<DataProtocol.OfferBatchStream>(HandleOffer);
        Receive<StreamEnded>(m =>
        {
            _streams--;
            _log.Info("batch stream from {0} ended: {1}", m.Node, m.Reason);
            if (m.Span is not null)
            {
                m.Span.SetTag(TelemetryTags.Bytes, Interlocked.Read(ref m.Count.Bytes));
                m.Span.SetTag(TelemetryTags.Batches, Interlocked.Read(ref m.Count.Batches));
                m.Span.SetTag(TelemetryTags.Outcome, m.Reason);
                if (m.Failed) m.Span.Fail(m.Reason);
                m.Span.EndHeld();
            }
        });
    }

    public static Props Props(IntakeBuffer buffer) => Akka.Actor.Props.Create(() => new BatchIntake(buffer));

    private void HandleOffer(DataProtocol.OfferBatchStream offer)
    {
        _streams++;
        _log.Info("batch stream offered by {0} (plan {1})", offer.Node, offer.PlanVersion);
        // One span per node-to-node stream (its bytes and batches), linked to the sender's stream span rather than
        // its child: both stay open as long as the stream, and the two processes export their ends independently,
        // so a child here could reach the backend before its parent (a missing root in Jaeger).
        var span = LiteVaeTelemetry.Default.Data.StartHeldLinkedRoot("batch stream receive", System.Diagnostics.ActivityKind.Consumer, [offer.TraceParent],
            [new(TelemetryTags.Peer, offer.Node), new("litevae.plan", offer.PlanVersion)]);
        var count = new StreamCount();
        var (kill, queue) = offer.Source.Source
            .ViaMaterialized(KillSwitches.Single<BatchChunk>(), Keep.Right)
            .ToMaterialized(Sink.Queue<BatchChunk>().WithAttributes(Attributes.CreateInputBuffer(1, 2)), Keep.Both)
            .Run(Context.Materializer());
        var token = _cts.Token;
        Consume(queue, kill, count, offer.Node, token).PipeTo(Self,
            success: () => new StreamEnded(offer.Node, "completed", false, span, count),
            // A stream cut because this node stops or the plan changed is not a failure of the transfer.
            failure: e => new StreamEnded(offer.Node, e.GetBaseException().Message, !token.IsCancellationRequested, span, count));
    }

    private async Task Consume(ISinkQueue<BatchChunk> queue, IKillSwitch kill, StreamCount count, string peer, CancellationToken ct)
    {
        using var reassembler = new ChunkReassembler();
        await using var reg = ct.Register(kill.Shutdown);
        while (!ct.IsCancellationRequested)
        {
            var next = await queue.PullAsync();
            if (!next.HasValue) return;
            int bytes = next.Value.Pixels.Length;
            Interlocked.Add(ref BytesReceived, bytes);
            Interlocked.Add(ref count.Bytes, bytes);
            LiteVaeTelemetry.Default.TransferBytes.Add(bytes, new KeyValuePair<string, object?>(TelemetryTags.Direction, "received"),
                new KeyValuePair<string, object?>(TelemetryTags.Peer, peer));
            var batch = reassembler.Add(next.Value);
            if (batch is null) continue;
            Interlocked.Increment(ref count.Batches);
            _buffer.Add(batch);
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _cts.Dispose();
    }
}
