using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>Cuts a batch into <see cref="BatchChunk"/>s of at most <c>chunkBytes</c> pixels each.</summary>
public static class BatchChunker
{
    public static IEnumerable<BatchChunk> Split(PixelBatch batch, long seq, int chunkBytes)
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
            chunks[i] = new BatchChunk(batch.PlanVersion, seq, i, count, batch.Count, batch.Height, batch.Width,
                i == 0 ? batch.Samples : [], pixels);
        }
        return chunks;
    }
}

/// <summary>
/// Puts chunks of one stream back together. Chunks of a batch arrive in order (a stream keeps order);
/// a chunk that does not continue the batch in progress drops that partial batch (counted).
/// </summary>
public sealed class ChunkReassembler : IDisposable
{
    private PixelBatch? _partial;
    private long _seq;
    private int _next;
    private int _offset;

    public long DroppedPartials { get; private set; }

    /// <summary>Adds a chunk; returns the batch when its last chunk arrived (the caller owns it).</summary>
    public PixelBatch? Add(BatchChunk c)
    {
        if (c.ChunkIndex == 0)
        {
            DropPartial();
            _partial = PixelBatch.Rent(c.Count, c.Height, c.Width, c.PlanVersion, c.Samples);
            (_seq, _next, _offset) = (c.BatchSeq, 0, 0);
        }
        if (_partial is null || c.BatchSeq != _seq || c.ChunkIndex != _next)
        {
            DropPartial();
            return null;
        }
        if (_offset + c.Pixels.Length > _partial.ByteLength)
            throw new InvalidDataException($"batch {c.BatchSeq}: chunks carry more bytes than {c.Count}×3×{c.Height}×{c.Width}");
        c.Pixels.Span.CopyTo(_partial.Pixels[_offset..]);
        _offset += c.Pixels.Length;
        _next++;
        if (_next < c.ChunkCount) return null;
        if (_offset != _partial.ByteLength)
            throw new InvalidDataException($"batch {c.BatchSeq}: chunks carry {_offset} bytes, expected {_partial.ByteLength}");
        var done = _partial;
        _partial = null;
        return done;
    }

    private void DropPartial()
    {
        if (_partial is null) return;
        _partial.Dispose();
        _partial = null;
        DroppedPartials++;
    }

    public void Dispose() => DropPartial();
}
