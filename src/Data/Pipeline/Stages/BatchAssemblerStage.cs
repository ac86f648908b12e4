using System.Threading.Channels;

namespace LiteVae.Data.Pipeline.Stages;

/// <summary>
/// Restores the logical order from sequence numbers (a ring buffer the size of the in-flight limit),
/// copies good samples into pooled batch buffers, and emits each full batch with the data position
/// after its last sample. Skipped samples still advance the position. With a <see cref="DataSlice"/>,
/// a batch also ends where its global batch ends.
/// </summary>
public sealed class BatchAssemblerStage(DataPipelineOptions options, BufferPool pool, SemaphoreSlim inFlight)
{
    public async Task RunAsync(ChannelReader<DecodedSample> input, ChannelWriter<Batch> output, CancellationToken ct)
    {
        int r = options.Transform.Resolution;
        int sampleBytes = 3 * r * r;
        int n = options.BatchSize;
        var ring = new DecodedSample?[options.DecodeQueue];
        long expected = 0, batchIndex = 0;
        byte[]? buffer = null;
        var infos = new List<SampleInfo>(n);
        DataPosition? last = null;
        var slice = options.Slice;
        long group = -1;   // with a slice: the global batch the batch being filled belongs to
        try
        {
            await foreach (var item in input.ReadAllAsync(ct).ConfigureAwait(false))
            {
                ring[item.Sequence % ring.Length] = item;
                while (ring[expected % ring.Length] is { } ready && ready.Sequence == expected)
                {
                    ring[expected % ring.Length] = null;
                    expected++;
                    inFlight.Release();
                    using (ready)
                    {
                        if (slice is not null)
                        {
                            // A batch never spans two global batches: a new one closes the batch being filled (short if samples were bad).
                            long g = slice.GroupOf(ready.PositionAfter.Global - 1);
                            if (g != group && infos.Count > 0)
                            {
                                var batch = new Batch(buffer!, pool, infos.Count, r, r, infos.ToArray(), last!, batchIndex++);
                                buffer = null;
                                infos.Clear();
                                await Emit(batch, output, ct).ConfigureAwait(false);
                            }
                            group = g;
                        }
                        last = ready.PositionAfter;
                        if (!ready.IsGood) continue;
                        buffer ??= pool.Rent();
                        ready.Pixels(sampleBytes).CopyTo(buffer.AsSpan(infos.Count * sampleBytes, sampleBytes));
                        infos.Add(ready.Info!);
                    }
                    if (infos.Count == n)
                    {
                        var batch = new Batch(buffer!, pool, n, r, r, infos.ToArray(), last, batchIndex++);
                        buffer = null;
                        infos.Clear();
                        await Emit(batch, output, ct).ConfigureAwait(false);
                    }
                }
            }
            if (infos.Count > 0 && !options.DropLast)
            {
                var batch = new Batch(buffer!, pool, infos.Count, r, r, infos.ToArray(), last!, batchIndex++);
                buffer = null;
                await Emit(batch, output, ct).ConfigureAwait(false);
            }
            output.TryComplete();
        }
        finally
        {
            if (buffer is not null) pool.Return(buffer);
            for (int i = 0; i < ring.Length; i++)
            {
                ring[i]?.Dispose();
                ring[i] = null;
            }
        }
    }

    private static async Task Emit(Batch batch, ChannelWriter<Batch> output, CancellationToken ct)
    {
        try
        {
            await output.WriteAsync(batch, ct).ConfigureAwait(false);
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }
}
