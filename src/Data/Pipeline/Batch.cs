namespace LiteVae.Data.Pipeline;

/// <summary>One image of a batch: its run-wide number (<see cref="Order.SampleOrder"/>), epoch, shard
/// (place in the shard list), index in the shard, and key.</summary>
public sealed record SampleInfo(long Number, int Epoch, int Shard, int Index, string Key);

/// <summary>A sample of a batch's span that was skipped: where it is and why.</summary>
public sealed record SkippedSample(long Number, int Epoch, int Shard, int Index, string? Key, BadReason Reason, string Detail);

/// <summary>
/// The samples numbered [<see cref="Start"/>, <see cref="End"/>) of a run's order as one contiguous uint8
/// buffer, N × 3 × H × W (planar RGB per image), in order; the span's bad samples are left out (so N may be
/// smaller than the span) and listed in <see cref="Skipped"/>. The buffer comes from a pool of pinned
/// buffers: the consumer owns the batch and must Dispose it, which returns the buffer.
/// </summary>
public sealed class Batch : IDisposable
{
    private readonly BufferPool? _pool;
    private byte[]? _buffer;

    public Batch(long start, int span, byte[] buffer, BufferPool? pool, int height, int width,
                 IReadOnlyList<SampleInfo> samples, IReadOnlyList<SkippedSample> skipped)
    {
        if ((long)samples.Count * 3 * height * width > buffer.Length)
            throw new ArgumentException("buffer is smaller than the batch");
        if (samples.Count + skipped.Count != span)
            throw new ArgumentException($"a span of {span} samples needs {span} samples or skips, got {samples.Count} + {skipped.Count}");
        (Start, Span, _buffer, _pool, Height, Width, Samples, Skipped) = (start, span, buffer, pool, height, width, samples, skipped);
    }

    /// <summary>Run-wide number of the span's first sample.</summary>
    public long Start { get; }
    /// <summary>Samples of the order this batch stands for (good and skipped).</summary>
    public int Span { get; }
    /// <summary>The number after the span: where the next batch starts, and the data position once this one is trained.</summary>
    public long End => Start + Span;
    public int Count => Samples.Count;
    public int Height { get; }
    public int Width { get; }
    public int SampleBytes => 3 * Height * Width;
    public int ByteLength => Count * SampleBytes;
    public IReadOnlyList<SampleInfo> Samples { get; }
    public IReadOnlyList<SkippedSample> Skipped { get; }

    /// <summary>The underlying pinned buffer (its first <see cref="ByteLength"/> bytes are the batch).</summary>
    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(Batch));

    public Memory<byte> Pixels => Buffer.AsMemory(0, ByteLength);

    /// <summary>Image <paramref name="i"/> as 3 × H × W bytes.</summary>
    public Span<byte> Sample(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i));
        return Buffer.AsSpan(i * SampleBytes, SampleBytes);
    }

    public bool IsDisposed => _buffer is null;

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null) _pool?.Return(buffer);
    }
}
