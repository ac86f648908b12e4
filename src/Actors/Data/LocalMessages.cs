using System.Threading.Channels;
using Akka.Actor;

namespace LiteVae.Actors.Data;

/// <summary>Ask a trainer's intake for its channel writer (only answered within one process).</summary>
public sealed class GetLocalIntake : INoSerializationVerificationNeeded
{
    public static readonly GetLocalIntake Instance = new();
    private GetLocalIntake() { }
}

/// <summary>The intake's channel: data stages in the same process write batches straight into it.</summary>
public sealed record LocalIntake(ChannelWriter<PixelBatch> Writer) : INoSerializationVerificationNeeded;

/// <summary>
/// The bounded channel in front of a DeviceTrainer. It outlives trainer restarts (the trainer drops batches
/// of stale plans); on shutdown it is completed and drained so every batch is disposed.
/// </summary>
public sealed class IntakeChannel
{
    private readonly Channel<PixelBatch> _channel;

    public IntakeChannel(int capacity)
    {
        Capacity = capacity;
        _channel = Channel.CreateBounded<PixelBatch>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true,
        });
    }

    public int Capacity { get; }
    public ChannelReader<PixelBatch> Reader => _channel.Reader;
    public ChannelWriter<PixelBatch> Writer => _channel.Writer;
    public int Depth => _channel.Reader.Count;

    public void CompleteAndDrain()
    {
        _channel.Writer.TryComplete();
        while (_channel.Reader.TryRead(out var b)) b.Dispose();
    }
}
