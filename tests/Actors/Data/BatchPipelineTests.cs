using LiteVae.Actors.Data;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Tests.Synthetic;

namespace LiteVae.Actors.Tests.Data;

public class BatchPipelineTests
{
    /// <summary>Decodes take random time, so workers finish out of order.</summary>
    private sealed class JitterDecoder(int badEvery) : ISampleDecoder
    {
        private readonly SyntheticDecoder _inner = new(badEvery);
        public string? Decode(RawSample s, long seed, Span<byte> dst)
        {
            Thread.Sleep(Random.Shared.Next(0, 3));
            return _inner.Decode(s, seed, dst);
        }
    }

    [Fact]
    public async Task Batches_come_out_in_read_order_whatever_the_decode_order_and_memory_stays_in_bounds()
    {
        var shards = new SyntheticShards([57]);
        var bounds = new PipelineBounds(4, 3, 3, 2);
        var parts = new DataPipelineParts(new DataShape(4, 8, 8), shards, new JitterDecoder(badEvery: 7));
        await using var pipeline = new BatchPipeline(parts, bounds, planVersion: 3);
        var lease = new DataProtocol.ShardLeased("c", 3, 1, 0, 0, shards.Paths[0], 1, IndexRanges.Empty, null);
        var tracker = new LeaseTracker(lease, _ => { });
        var reader = Task.Run(async () =>
        {
            await foreach (var s in shards.ReadAsync(new ShardReadRequest(0, 0, lease.ShardPath, 1, lease.Skip), new ShardReadCounts(), default))
                await pipeline.WriteAsync(s, tracker, default);
        });
        var got = new List<SampleId>();
        int good = Enumerable.Range(0, 57).Count(i => i % 7 != 6);
        while (got.Count < good / 4 * 4)
        {
            await Task.Delay(5);   // a slow consumer
            using var b = await pipeline.Output.ReadAsync();
            Assert.Equal(3, b.PlanVersion);
            for (int i = 0; i < b.Count; i++)
                Assert.True(b.Image(i).IndexOfAnyExcept(SyntheticDecoder.Value(b.Samples[i].Shard, b.Samples[i].Index)) < 0);
            got.AddRange(b.Samples);
        }
        await reader;
        Assert.Equal(Enumerable.Range(0, 57).Where(i => i % 7 != 6).Take(got.Count), got.Select(id => id.Index));
        long sample = 3 * 8 * 8;
        Assert.True(pipeline.DecodedBytes.Peak <= bounds.Window * sample, $"decoded peak {pipeline.DecodedBytes.Peak}");
        Assert.True(pipeline.OutputBytes.Peak <= (bounds.OutputBatches + 2) * 4 * sample, $"output peak {pipeline.OutputBytes.Peak}");
    }

    [Fact]
    public void Chunks_reassemble_into_the_same_batch_and_a_broken_sequence_drops_the_partial()
    {
        using var b = PixelBatch.Rent(3, 16, 16, 5, [new SampleId(0, 1, 2), new SampleId(0, 1, 3), new SampleId(0, 2, 0)]);
        for (int i = 0; i < b.ByteLength; i++) b.Pixels[i] = (byte)(i * 31 % 251);
        var chunks = BatchChunker.Split(b, 9, 1024).ToList();
        Assert.Equal((b.ByteLength + 1023) / 1024, chunks.Count);
        using var r = new ChunkReassembler();
        PixelBatch? back = null;
        foreach (var c in chunks) back = r.Add(c) ?? back;
        using (back)
        {
            Assert.NotNull(back);
            Assert.Equal(b.Samples, back!.Samples);
            Assert.True(b.Pixels.SequenceEqual(back.Pixels));
        }
        Assert.Null(r.Add(chunks[0]));
        Assert.Null(r.Add(chunks[2]));   // chunk 1 went missing
        Assert.Equal(1, r.DroppedPartials);
    }
}
