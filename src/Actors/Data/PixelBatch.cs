using System.Buffers;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>
/// One training batch as it travels between stages: contiguous uint8 pixels, N×3×H×W (RGB planes), the ids
/// of its samples, and the data plan it was produced for. It owns its (pooled) buffer: whoever takes it out
/// of a channel disposes it; channel shutdown drains and disposes leftovers.
/// </summary>
public sealed class PixelBatch : IDisposable
{
    private static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(64 * 1024 * 1024, 16);

    private byte[]? _buffer;
    private IDisposable? _owner;
    private Action? _released;

    public int Count { get; }
    public int Height { get; }
    public int Width { get; }
    public long PlanVersion { get; }
    public IReadOnlyList<SampleId> Samples { get; }
    public int ByteLength => Count * 3 * Height * Width;

    private PixelBatch(int count, int height, int width, long planVersion, IReadOnlyList<SampleId> samples, byte[]? buffer, IDisposable? owner)
    {
        if (samples.Count != count)
            throw new ArgumentException($"a batch of {count} images needs {count} sample ids, got {samples.Count}");
        (Count, Height, Width, PlanVersion, Samples, _buffer, _owner) = (count, height, width, planVersion, samples, buffer, owner);
    }

    /// <summary>A batch on a pooled buffer (contents undefined until written).</summary>
    public static PixelBatch Rent(int count, int height, int width, long planVersion, IReadOnlyList<SampleId> samples) =>
        new(count, height, width, planVersion, samples, Pool.Rent(count * 3 * height * width), null);

    /// <summary>Wraps pixels owned by someone else (e.g. the data pipeline's own pooled batch).</summary>
    public static PixelBatch Wrap(int count, int height, int width, long planVersion, IReadOnlyList<SampleId> samples, byte[] pixels, IDisposable? owner) =>
        pixels.Length < count * 3 * height * width
            ? throw new ArgumentException("pixel buffer smaller than the batch")
            : new(count, height, width, planVersion, samples, pixels, owner);

    public Span<byte> Pixels => (_buffer ?? throw new ObjectDisposedException(nameof(PixelBatch))).AsSpan(0, ByteLength);

    public Memory<byte> PixelMemory => (_buffer ?? throw new ObjectDisposedException(nameof(PixelBatch))).AsMemory(0, ByteLength);

    /// <summary>The pixels of image <paramref name="i"/> (3×H×W).</summary>
    public Span<byte> Image(int i) => Pixels.Slice(i * 3 * Height * Width, 3 * Height * Width);

    /// <summary>Runs <paramref name="released"/> when the batch is disposed (stage memory gauges use it).</summary>
    public PixelBatch OnRelease(Action released)
    {
        _released += released;
        return this;
    }

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is null) return;
        if (_owner is not null) _owner.Dispose();
        else Pool.Return(b);
        _owner = null;
        _released?.Invoke();
        _released = null;
    }

    public bool IsDisposed => _buffer is null;
}
