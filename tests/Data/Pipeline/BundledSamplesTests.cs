using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;
using static LiteVae.Data.Tests.Pipeline.PipelineTestKit;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>The photographs bundled in samples/shards (made by samples/make-samples.sh) read cleanly.</summary>
public sealed class BundledSamplesTests
{
    private static string Shards(string pattern) => Path.Combine(Fixtures.RepoRoot, "samples", "shards", pattern);

    [Fact]
    public async Task Training_shards_give_68_samples_and_the_eval_shard_10_held_out_ones()
    {
        var train = new DataConfig { Source = [Shards("train-{000000..000003}.tar")], Resolution = 64, BatchSize = 17 };
        var trainIndex = train.LoadIndex(_ => { });
        await using (var p = DataPipeline.Start(train.CreatePipelineOptions(trainIndex, DataUse.Train, decodeWorkers: 2)))
        {
            var keys = (await Run(p, 0, 17, 4)).SelectMany(b => b.Keys).ToList();
            Assert.Equal(68, keys.Count);
            Assert.Equal(68, keys.Distinct().Count());
            Assert.Equal(0, p.Stats.Bad);
        }
        var eval = new DataConfig { Source = [Shards("eval-000000.tar")], Resolution = 256, BatchSize = 4 };
        var evalIndex = eval.LoadIndex(_ => { });
        Assert.Equal(10, evalIndex.TotalSamples);
        await using (var p = DataPipeline.Start(eval.CreatePipelineOptions(evalIndex, DataUse.Eval)))
        {
            var batches = (await Run(p, 0, 4, 2)).Concat(await Run(p, 8, 2, 1)).ToList();
            var evalKeys = batches.SelectMany(b => b.Keys).ToList();
            Assert.Equal(10, evalKeys.Count);
            Assert.Equal(new[] { 4, 4, 2 }, batches.Select(b => b.Keys.Length));
            // Held out: no evaluation photo appears among the training samples.
            var trainPhotos = ShardSpec.Resolve([Shards("train-*.tar")])
                .SelectMany(s => s.Read(new ReadContext { Report = _ => { } }).Select(x => { x.Dispose(); return x.Key; }))
                .Select(k => k[..k.LastIndexOf('-')]).ToHashSet();
            Assert.DoesNotContain(evalKeys, trainPhotos.Contains);
        }
    }
}
