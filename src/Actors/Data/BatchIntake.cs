using Akka.Actor;
using Akka.Event;
using Akka.Streams;
using Akka.Streams.Dsl;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>
/// The trainer node's end of the data path. Data stages in the same process get the intake channel's
/// writer directly (<see cref="GetLocalIntake"/>); remote data nodes offer StreamRefs of chunks, which are
/// pulled one chunk at a time, reassembled and written into the bounded channel, so a full channel stops
/// the remote pipeline (back-pressure through the stream's demand).
/// </summary>
public sealed class BatchIntake : ReceiveActor
{
    private sealed record StreamEnded(string Node, string Reason) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IntakeChannel _channel;
    private readonly CancellationTokenSource _cts = new();
    private int _streams;

    /// <summary>Bytes received across nodes (for the pipeline benchmark and metrics).</summary>
    public static long BytesReceived;

    public BatchIntake(IntakeChannel channel)
    {
        _channel = channel;
        Receive<GetLocalIntake>(_ => Sender.Tell(new LocalIntake(_channel.Writer)));
        Receive<DataProtocol.OfferBatchStream>(HandleOffer);
        Receive<StreamEnded>(m =>
        {
            _streams--;
            _log.Info("batch stream from {0} ended: {1}", m.Node, m.Reason);
        });
    }

    public static Props Props(IntakeChannel channel) => Akka.Actor.Props.Create(() => new BatchIntake(channel));

    private void HandleOffer(DataProtocol.OfferBatchStream offer)
    {
        _streams++;
        _log.Info("batch stream offered by {0} (plan {1})", offer.Node, offer.PlanVersion);
        var (kill, queue) = offer.Source.Source
            .ViaMaterialized(KillSwitches.Single<BatchChunk>(), Keep.Right)
            .ToMaterialized(Sink.Queue<BatchChunk>().WithAttributes(Attributes.CreateInputBuffer(1, 2)), Keep.Both)
            .Run(Context.Materializer());
        Consume(queue, kill, _cts.Token).PipeTo(Self,
            success: () => new StreamEnded(offer.Node, "completed"),
            failure: e => new StreamEnded(offer.Node, e.GetBaseException().Message));
    }

    private async Task Consume(ISinkQueue<BatchChunk> queue, IKillSwitch kill, CancellationToken ct)
    {
        using var reassembler = new ChunkReassembler();
        await using var reg = ct.Register(kill.Shutdown);
        while (!ct.IsCancellationRequested)
        {
            var next = await queue.PullAsync();
            if (!next.HasValue) return;
            Interlocked.Add(ref BytesReceived, next.Value.Pixels.Length);
            var batch = reassembler.Add(next.Value);
            if (batch is null) continue;
            try { await _channel.Writer.WriteAsync(batch, ct); }
            catch { batch.Dispose(); throw; }
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _cts.Dispose();
    }
}
