using LiteVae.Data.Config;
using LiteVae.Data.Order;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;
using LiteVae.Data.Transforms;
using static LiteVae.Data.Tests.Pipeline.PipelineTestKit;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>Five small shards shared by the tests of one class (made once).</summary>
public sealed class SmallShards : IDisposable
{
    private readonly string _dir = Fixtures.TempDir("pipeline");
    public string[] Paths { get; }

    public SmallShards() => Paths = MakeShards(_dir);

    public void Dispose() => Directory.Delete(_dir, true);
}

public sealed class PipelineOrderTests(SmallShards fixture) : IClassFixture<SmallShards>
{
    private readonly string[] _shards = fixture.Paths;

    [Fact]
    public async Task A_batch_depends_only_on_its_span_not_on_workers_prefetch_or_what_was_asked_before()
    {
        const int span = 5, batches = 3 * Total / span;   // three epochs; spans straddle the epoch boundaries
        List<BatchRecord> narrow, wide;
        await using (var a = DataPipeline.Start(Options(_shards) with { Readers = 1, DecodeWorkers = 1, Prefetch = 1 }))
            narrow = await Run(a, 0, span, batches);
        await using (var b = DataPipeline.Start(Options(_shards) with { Readers = 3, DecodeWorkers = 4, Prefetch = 4 }))
            wide = await Run(b, 0, span, batches);
        AssertSame(narrow, wide);

        // Another node that makes only every third batch, starting with the second (as data node 1 of 3 would),
        // and a trainer resumed at batch 17: the same batches, bit for bit.
        await using (var c = DataPipeline.Start(Options(_shards)))
        {
            var mine = new List<BatchRecord>();
            for (int k = 1; k < batches; k += 3) mine.AddRange(await Run(c, (long)k * span, span, 1));
            AssertSame(narrow.Where((_, k) => k % 3 == 1).ToList(), mine);
            AssertSame(narrow.Skip(17).ToList(), await Run(c, 17L * span, span, batches - 17));
        }
    }

    [Fact]
    public void Every_epoch_holds_every_sample_once_in_a_new_order_and_the_streams_take_turns()
    {
        var index = Index(_shards);
        var order = new SampleOrder(index.Shards.Select(s => s.Name).ToList(), index.Sizes, Shuffled);
        Assert.Equal(Total, order.SamplesPerEpoch);
        var epochs = Enumerable.Range(0, 3)
            .Select(e => Enumerable.Range(0, Total).Select(i => order.At((long)e * Total + i)).ToList()).ToList();
        var all = Sizes.SelectMany((n, shard) => Enumerable.Range(0, n).Select(i => (shard, i))).Order().ToList();
        for (int e = 0; e < 3; e++)
        {
            Assert.All(epochs[e], r => Assert.Equal(e, r.Epoch));
            Assert.Equal(all, epochs[e].Select(r => (r.Shard, r.Index)).Order());
        }
        Assert.NotEqual(epochs[0].Select(r => (r.Shard, r.Index)), epochs[1].Select(r => (r.Shard, r.Index)));
        // Three streams take turns: the first three samples of an epoch come from three different shards,
        // and the first shard's first window of 4 samples is a permutation of its samples 0..3.
        Assert.Equal(3, epochs[0].Take(3).Select(r => r.Shard).Distinct().Count());
        int first = epochs[0][0].Shard;
        Assert.Equal([0, 1, 2, 3], epochs[0].Where(r => r.Shard == first).Take(4).Select(r => r.Index).Order());

        // The same inputs give the same order (a new object, as on another node); the fingerprint changes
        // with anything that changes the order.
        var again = new SampleOrder(index.Shards.Select(s => s.Name).ToList(), index.Sizes, Shuffled);
        Assert.Equal(epochs[1], Enumerable.Range(0, Total).Select(i => again.At(Total + i)));
        Assert.Equal(order.Fingerprint, again.Fingerprint);
        var names = index.Shards.Select(s => s.Name).ToList();
        Assert.NotEqual(order.Fingerprint, new SampleOrder(names, index.Sizes, Shuffled with { Seed = 99 }).Fingerprint);
        Assert.NotEqual(order.Fingerprint, new SampleOrder(names, index.Sizes, Shuffled with { Streams = 2 }).Fingerprint);
        Assert.NotEqual(order.Fingerprint, new SampleOrder(names, [.. index.Sizes.Take(4), 10], Shuffled).Fingerprint);
        Assert.NotEqual(order.Fingerprint, new SampleOrder([.. names.Take(4), "other.tar"], index.Sizes, Shuffled).Fingerprint);
    }

    [Fact]
    public async Task Disposing_mid_run_returns_every_batch_buffer()
    {
        var p = DataPipeline.Start(Options(_shards) with { Prefetch = 3 });
        Assert.Equal(2, (await Run(p, 0, 5, 2)).Count);
        for (int k = 2; k < 8; k++) _ = p.RequestAsync(k * 5L, 5).AsTask();   // some wait for a free slot
        await Task.Delay(200);
        await p.DisposeAsync();
        Assert.Equal(0, p.Pool.Outstanding);
        Assert.False(await p.Batches.WaitToReadAsync());   // a reader (a node-to-node stream) sees the end
        Assert.True(p.Pool.Allocated <= 2 * 3 + 2, $"{p.Pool.Allocated} buffers");   // filling + waiting + consumed
    }

    [Fact]
    public async Task Batches_are_contiguous_planar_rgb_that_equal_the_transform_of_each_sample()
    {
        var options = Options(_shards);
        await using var p = DataPipeline.Start(options);
        foreach (long start in new long[] { 0, 52 })   // the second span straddles the end of epoch 0
        {
            await p.RequestAsync(start, 5);
            Assert.True(await p.Batches.WaitToReadAsync());
            Assert.True(p.Batches.TryRead(out var batch));
            using (batch)
            {
                Assert.Equal(16, batch.Height);
                Assert.Equal(batch.Count * 3 * 16 * 16, batch.Pixels.Length);
                Assert.Equal(Enumerable.Range(0, 5).Select(i => start + i), batch.Samples.Select(s => s.Number));
                for (int i = 0; i < batch.Count; i++)
                {
                    var info = batch.Samples[i];
                    Assert.Equal(options.Order.At(info.Number), new SampleRef(info.Epoch, info.Shard, info.Index));
                    using var raw = options.Index.Read(info.Shard, info.Index, Quiet());
                    Assert.Equal(info.Key, raw.Key);
                    var expected = new byte[3 * 16 * 16];
                    options.Transform.Apply(raw.Image, new SampleKey(1234, info.Epoch, options.Order.PositionInEpoch(info.Number)), expected, new TransformScratch());
                    Assert.Equal(expected, batch.Sample(i).ToArray());
                }
                if (start == 52) Assert.Equal([0, 0, 1, 1, 1], batch.Samples.Select(s => s.Epoch));
            }
        }
    }

    [Fact]
    public async Task Evaluation_reads_every_shard_once_in_list_order_with_a_last_partial_batch()
    {
        var config = new DataConfig { Source = _shards, Resolution = 16, BatchSize = 8 };
        var index = config.LoadIndex(_ => { });
        var options = config.CreatePipelineOptions(index, DataUse.Eval);
        Assert.IsType<EvalTransform>(options.Transform);
        await using var p = DataPipeline.Start(options);
        var batches = new List<BatchRecord>();
        for (long start = 0; start < Total; start += 8)
            batches.AddRange(await Run(p, start, (int)Math.Min(8, Total - start), 1));
        var keys = batches.SelectMany(b => b.Keys).ToList();
        Assert.Equal(Total, keys.Count);
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys); // shard order, sample order
        Assert.Equal(Total % 8, batches[^1].Keys.Length);
    }

    [Fact]
    public void An_index_is_saved_and_reused_until_a_shard_changes()
    {
        string dir = Fixtures.TempDir("index");
        try
        {
            var paths = MakeShards(dir, [3, 5]);
            string cache = Path.Combine(dir, "data-index.json");
            var first = ShardIndex.Load(ShardSpec.Resolve(paths), Quiet(), cacheFile: cache);
            Assert.Equal([3, 5], first.Sizes);
            Assert.True(File.Exists(cache));
            // What a restarted process reads back: the same layouts, offsets included.
            var saved = ShardIndex.FromFile(cache, ShardSpec.Resolve(paths));
            Assert.NotNull(saved);
            Assert.Equal(first.Layouts, saved.Layouts);
            Assert.NotNull(first.Layouts[0].Offsets);
            ShardBuilder.WriteJpegShard(paths[1], "s1", 7, 40, 32, seedBase: 1000);   // shard 1 changes
            File.SetLastWriteTimeUtc(paths[1], DateTime.UtcNow.AddMinutes(1));
            Assert.Null(ShardIndex.FromFile(cache, ShardSpec.Resolve(paths)));
            var second = ShardIndex.Load(ShardSpec.Resolve(paths), Quiet(), cacheFile: cache);
            Assert.Equal([3, 7], second.Sizes);
            Assert.Equal(first.Layouts[0], second.Layouts[0]);
        }
        finally { Directory.Delete(dir, true); }
    }
}
