namespace LiteVae.Data.Pipeline;

/// <summary>Where one image of a batch came from; <paramref name="Global"/> is its run-wide number (see <see cref="DataPosition.Global"/>).</summary>
public sealed record SampleInfo(string Shard, string Key, int Epoch, long Index, IReadOnlyDictionary<string, byte[]>? Metadata, long Global = 0);

/// <summary>
/// A batch of images as one contiguous uint8 buffer, N × 3 × H × W (planar RGB per image), from a
/// pool of pinned buffers. The consumer owns it and must Dispose it, which returns the buffer.
/// <see cref="PositionAfter"/> is the data position right after the last sample of this batch: save
/// it with a checkpoint taken after this batch was consumed, and a resumed run starts at the next sample.
/// </summary>
public sealed class Batch : IDisposable
{
    private readonly BufferPool? _pool;
    private byte[]? _buffer;

    public Batch(byte[] buffer, BufferPool? pool, int count, int height, int width,
                 IReadOnlyList<SampleInfo> samples, DataPosition positionAfter, long index)
    {
        if ((long)count * 3 * height * width > buffer.Length)
            throw new ArgumentException("buffer is smaller than the batch");
        _buffer = buffer;
        _pool = pool;
        Count = count;
        Height = height;
        Width = width;
        Samples = samples;
        PositionAfter = positionAfter;
        Index = index;
    }

    public int Count { get; }
    public int Channels => 3;
    public int Height { get; }
    public int Width { get; }
    public int SampleBytes => 3 * Height * Width;
    public IReadOnlyList<SampleInfo> Samples { get; }
    public DataPosition PositionAfter { get; }
    /// <summary>0-based number of this batch since the pipeline started.</summary>
    public long Index { get; }

    /// <summary>The underlying pinned buffer (its first Count × SampleBytes bytes are the batch).</summary>
    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(Batch));

    public Memory<byte> Pixels => Buffer.AsMemory(0, Count * SampleBytes);

    /// <summary>Image <paramref name="i"/> as 3 × H × W bytes.</summary>
    public Span<byte> Sample(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i));
        return Buffer.AsSpan(i * SampleBytes, SampleBytes);
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null) _pool?.Return(buffer);
    }
}
