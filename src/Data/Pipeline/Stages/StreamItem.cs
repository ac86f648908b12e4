namespace LiteVae.Data.Pipeline.Stages;

/// <summary>What a stream reader emits: a sample, or the marker that its share of an epoch is done.</summary>
public readonly record struct StreamItem(RawSample? Sample, int Epoch)
{
    public bool IsEndOfEpoch => Sample is null;
    public static StreamItem EndOf(int epoch) => new(null, epoch);
}

/// <summary>A decoded, transformed sample on its way to the batch assembler (or a skipped one).</summary>
public sealed class DecodedSample : IDisposable
{
    private byte[]? _pixels;

    public DecodedSample(long sequence, DataPosition positionAfter, SampleInfo? info, byte[]? pixels)
    {
        Sequence = sequence;
        PositionAfter = positionAfter;
        Info = info;
        _pixels = pixels;
    }

    public long Sequence { get; }
    public DataPosition PositionAfter { get; }
    /// <summary>Null for a skipped (bad) sample.</summary>
    public SampleInfo? Info { get; }
    public bool IsGood => _pixels is not null;
    public ReadOnlySpan<byte> Pixels(int length) => _pixels.AsSpan(0, length);

    public void Dispose()
    {
        var p = Interlocked.Exchange(ref _pixels, null);
        if (p is not null) System.Buffers.ArrayPool<byte>.Shared.Return(p);
    }
}
