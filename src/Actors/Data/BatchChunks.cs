using LiteVae.Actors.Protocol;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Data;

/// <summary>Cuts a batch into <see cref="BatchChunk"/>s of at most <c>chunkBytes</c> pixels each (the first carries the samples).</summary>
public static class BatchChunker
{
    public static IEnumerable<BatchChunk> Split(Batch batch, int chunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 1024);
        int total = batch.ByteLength;
        int count = Math.Max(1, (total + chunkBytes - 1) / chunkBytes);
        var chunks = new BatchChunk[count];
        for (int i = 0; i < count; i++)
        {
            int start = i * chunkBytes, len = Math.Min(chunkBytes, total - start);
            // A copy: the batch's pooled buffer goes back to the pool before remoting serializes the chunk.
            var pixels = batch.Pixels.Slice(start, len).ToArray();
            chunks[i] = new BatchChunk(batch.Start, batch.Span, i, count, batch.Height, batch.Width,
                i == 0 ? batch.Samples : [], i == 0 ? batch.Skipped : [], pixels);
        }
        return chunks;
    }
}

/// <summary>
/// Puts chunks of one stream back together into batches on pooled pinned buffers. Chunks of a batch arrive in
/// order (a stream keeps order); a chunk that does not continue the batch in progress drops that partial batch.
/// </summary>
public sealed class ChunkReassembler : IDisposable
{
    private readonly Dictionary<int, BufferPool> _pools = new();
    private BatchChunk? _first;
    private byte[]? _buffer;
    private BufferPool? _pool;
    private int _next, _offset;

    public long DroppedPartials { get; private set; }

    /// <summary>Adds a chunk; returns the batch when its last chunk arrived (the caller owns it).</summary>
    public Batch? Add(BatchChunk c)
    {
        if (c.ChunkIndex == 0)
        {
            DropPartial();
            int bytes = c.Samples.Count * 3 * c.Height * c.Width;
            if (!_pools.TryGetValue(Math.Max(bytes, 1), out _pool))
                _pools[Math.Max(bytes, 1)] = _pool = new BufferPool(Math.Max(bytes, 1), 4);
            (_first, _buffer, _next, _offset) = (c, _pool.Rent(), 0, 0);
        }
        if (_first is null || _buffer is null || c.Start != _first.Start || c.ChunkIndex != _next)
        {
            DropPartial();
            return null;
        }
        int expected = _first.Samples.Count * 3 * _first.Height * _first.Width;
        if (_offset + c.Pixels.Length > expected)
            throw new InvalidDataException($"batch at sample {c.Start}: chunks carry more bytes than {_first.Samples.Count}×3×{c.Height}×{c.Width}");
        c.Pixels.Span.CopyTo(_buffer.AsSpan(_offset));
        _offset += c.Pixels.Length;
        _next++;
        if (_next < c.ChunkCount) return null;
        if (_offset != expected)
            throw new InvalidDataException($"batch at sample {c.Start}: chunks carry {_offset} bytes, expected {expected}");
        var done = new Batch(_first.Start, _first.Span, _buffer, _pool, _first.Height, _first.Width, _first.Samples, _first.Skipped);
        (_first, _buffer) = (null, null);
        return done;
    }

    private void DropPartial()
    {
        if (_buffer is null) return;
        _pool!.Return(_buffer);
        (_first, _buffer) = (null, null);
        DroppedPartials++;
    }

    public void Dispose() => DropPartial();
}
