using LiteVae.Data.Config;
using LiteVae.Data.Decoding;
using LiteVae.Data.Pipeline;
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
    private const int Total = 13 + 9 + 17 + 4 + 11;

    [Fact]
    public async Task The_order_does_not_depend_on_readers_workers_or_queue_sizes()
    {
        var narrow = Options(_shards) with { Readers = 1, DecodeWorkers = 1, StreamQueue = 1, DecodeQueue = 1, BatchQueue = 1 };
        var wide = Options(_shards) with { Readers = 3, DecodeWorkers = 4, StreamQueue = 32, DecodeQueue = 100, BatchQueue = 4 };
        const int batches = 3 * Total / 5; // three epochs
        await using var a = DataPipeline.Start(narrow);
        await using var b = DataPipeline.Start(wide);
        AssertSame(await Take(a, batches), await Take(b, batches));
    }

    [Fact]
    public async Task Every_epoch_holds_every_sample_once_in_a_new_order()
    {
        await using var p = DataPipeline.Start(Options(_shards) with { MaxEpochs = 3 });
        var batches = await All(p);
        Assert.Equal(3 * Total, batches.Sum(b => b.Keys.Length));
        var byEpoch = batches.SelectMany(b => b.Keys.Zip(b.Epochs, b.Indexes)).GroupBy(x => x.Second).OrderBy(g => g.Key).ToList();
        Assert.Equal(3, byEpoch.Count);
        var allKeys = Enumerable.Range(0, 5).SelectMany(i => Enumerable.Range(0, new[] { 13, 9, 17, 4, 11 }[i]).Select(j => $"s{i}-{j:D4}")).Order().ToList();
        foreach (var epoch in byEpoch)
        {
            Assert.Equal(allKeys, epoch.Select(x => x.First).Order());
            Assert.Equal(Enumerable.Range(0, Total).Select(i => (long)i), epoch.Select(x => x.Third));
        }
        Assert.NotEqual(byEpoch[0].Select(x => x.First), byEpoch[1].Select(x => x.First));
        Assert.Equal(Total, p.Stats.Good / 3);
        Assert.Equal(0, p.Stats.Bad);
        await p.Completion;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(11)]
    [InlineData(13)]
    public async Task Resuming_from_a_saved_position_continues_the_identical_sequence(int stopAfter)
    {
        const int total = 24; // crosses two epoch boundaries (54 samples per epoch, batch 5)
        List<BatchRecord> uninterrupted;
        await using (var p = DataPipeline.Start(Options(_shards)))
            uninterrupted = await Take(p, total);

        string saved;
        await using (var p = DataPipeline.Start(Options(_shards) with { DecodeWorkers = 3 }))
        {
            var first = await Take(p, stopAfter);
            AssertSame(uninterrupted.Take(stopAfter).ToList(), first);
            saved = first[^1].PositionAfter.ToJson();
        }
        // A different machine: other reader and worker counts, a position that went through JSON.
        var resumedOptions = Options(_shards) with { Readers = 1, DecodeWorkers = 1, DecodeQueue = 3 };
        await using (var p = DataPipeline.Start(resumedOptions, DataPosition.FromJson(saved)))
            AssertSame(uninterrupted.Skip(stopAfter).ToList(), await Take(p, total - stopAfter));
    }

    [Fact]
    public async Task Data_parallel_slices_partition_each_global_batch_without_decoding_others()
    {
        const int global = 6;
        List<BatchRecord> whole;
        await using (var p = DataPipeline.Start(Options(_shards) with { MaxEpochs = 1, BatchSize = global }))
            whole = await All(p);
        var indexToKey = whole.SelectMany(b => b.Indexes.Zip(b.Keys)).ToDictionary(x => x.First, x => x.Second);

        var seen = new List<string>();
        for (int rank = 0; rank < 3; rank++)
        {
            var slice = DataSlice.ForRank(global, rank, 3);
            await using var p = DataPipeline.Start(Options(_shards) with { MaxEpochs = 1, BatchSize = slice.End - slice.Begin, Slice = slice });
            var mine = (await All(p)).SelectMany(b => b.Indexes.Zip(b.Keys)).ToList();
            Assert.All(mine, x => Assert.True(slice.Contains(x.First)));
            Assert.All(mine, x => Assert.Equal(indexToKey[x.First], x.Second));
            Assert.Equal(mine.Count, p.Stats.Good); // decoded only its share
            seen.AddRange(mine.Select(x => x.Second));
        }
        Assert.Equal(indexToKey.Values.Order(), seen.Order());
    }

    [Fact]
    public async Task A_position_from_another_data_order_is_refused()
    {
        DataPosition position;
        await using (var p = DataPipeline.Start(Options(_shards)))
            position = (await Take(p, 2))[^1].PositionAfter;
        var e = Assert.Throws<ArgumentException>(() => DataPipeline.Start(Options(_shards) with { Seed = 99 }, position));
        Assert.Contains("another data order", e.Message);
        Assert.Throws<ArgumentException>(() => DataPipeline.Start(Options(_shards.Take(4)), position));
        Assert.Throws<FormatException>(() => DataPosition.FromJson("{\"epoch\":-1}"));
    }

    [Fact]
    public async Task Disposing_mid_run_returns_every_batch_buffer()
    {
        var p = DataPipeline.Start(Options(_shards) with { BatchQueue = 3 });
        var first = await Take(p, 2);
        Assert.Equal(2, first.Count);
        await Task.Delay(200); // let the prefetch queue fill
        await p.DisposeAsync();
        Assert.Equal(0, p.Pool.Outstanding);
        Assert.True(p.Pool.Allocated <= 3 + 2 + 2); // bounded: queue + in progress + consumed
    }

    [Fact]
    public async Task Batches_are_contiguous_planar_rgb_that_equal_the_transform_of_each_sample()
    {
        var options = Options(_shards) with { MaxEpochs = 1 };
        await using var p = DataPipeline.Start(options);
        await foreach (var batch in p.ReadAllAsync())
        {
            using (batch)
            {
                Assert.Equal(16, batch.Height);
                Assert.Equal(batch.Count * 3 * 16 * 16, batch.Pixels.Length);
                var info = batch.Samples[0];
                var shard = options.Shards.First(s => s.Name == info.Shard);
                using var raw = shard.Read(0, new LiteVae.Data.Shards.ReadContext { Report = _ => { } }).First(s => s.Key == info.Key);
                var expected = new byte[3 * 16 * 16];
                options.Transform.Apply(raw.Image, new SampleKey(options.Seed, info.Epoch, info.Index), expected, new TransformScratch());
                Assert.Equal(expected, batch.Sample(0).ToArray());
            }
        }
    }

    [Fact]
    public async Task Evaluation_reads_every_shard_once_in_list_order_with_a_last_partial_batch()
    {
        var config = new DataConfig { Source = _shards, Resolution = 16, BatchSize = 8 };
        var options = config.CreatePipelineOptions(DataUse.Eval);
        await using var p = DataPipeline.Start(options);
        var batches = await All(p);
        var keys = batches.SelectMany(b => b.Keys).ToList();
        Assert.Equal(Total, keys.Count);
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys); // shard order, sample order
        Assert.Equal(Total % 8, batches[^1].Keys.Length);
        Assert.IsType<EvalTransform>(options.Transform);
    }
}
