namespace LiteVae.Data.Pipeline;

/// <summary>
/// A pool of equal-sized byte buffers for batches. Buffers are allocated on the pinned object heap,
/// so a trainer can hand their address to native code (a tensor over the batch, a pinned host→device
/// copy) without pinning per batch. At most <c>maxRetained</c> idle buffers are kept.
/// </summary>
public sealed class BufferPool(int bufferLength, int maxRetained)
{
    private readonly Stack<byte[]> _idle = new();
    private int _outstanding;
    private long _allocated;

    public int BufferLength { get; } = bufferLength > 0 ? bufferLength : throw new ArgumentOutOfRangeException(nameof(bufferLength));

    /// <summary>Buffers rented and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Buffers ever allocated (a measure of pool misses).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    public byte[] Rent()
    {
        Interlocked.Increment(ref _outstanding);
        lock (_idle)
            if (_idle.TryPop(out var buffer))
                return buffer;
        Interlocked.Increment(ref _allocated);
        return GC.AllocateUninitializedArray<byte>(BufferLength, pinned: true);
    }

    public void Return(byte[] buffer)
    {
        if (buffer.Length != BufferLength) throw new ArgumentException("buffer does not belong to this pool", nameof(buffer));
        Interlocked.Decrement(ref _outstanding);
        lock (_idle)
            if (_idle.Count < maxRetained)
                _idle.Push(buffer);
    }
}
