using LiteVae.Data.Pipeline;
using LiteVae.Data.Tests.Support;
using static LiteVae.Data.Tests.Pipeline.PipelineTestKit;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>
/// Elastic exact resume at the data layer: N data nodes (pipelines that decode only their own global
/// batches) feed G ranks; a run checkpointed with 2 nodes and 2 ranks resumes with 1 node and 3 ranks (and
/// 3 and 1) and consumes, step by step, exactly the samples the uninterrupted run consumed. The truth is
/// a single unsliced pipeline over the same shards: its logical order cut into global batches.
/// </summary>
public sealed class ElasticResumeTests : IDisposable
{
    private readonly string _dir = Fixtures.TempDir("elastic");
    private readonly string[] _shards;
    private const int Global = 12;   // 54 samples per epoch: global batches straddle every epoch boundary

    public ElasticResumeTests() => _shards = MakeShards(_dir);

    /// <summary>One training step as the ranks saw it: rank r's sample keys, in order.</summary>
    private sealed record Step(string[][] Ranks)
    {
        public string[] All => Ranks.SelectMany(r => r).ToArray();
    }

    /// <summary>
    /// Runs <paramref name="steps"/> steps of a simulated cluster: node d's pipeline has the plan's slice,
    /// step k takes global batch k from node k mod N and gives each rank its part.
    /// </summary>
    private async Task<(List<Step> Steps, DataPosition After, long Decoded)> Train(string[] shards, ElasticPlan plan, DataPosition? from, int steps)
    {
        var nodes = Enumerable.Range(0, plan.DataNodes)
            .Select(d => DataPipeline.Start(Options(shards) with { BatchSize = plan.GlobalBatch, Slice = plan.NodeSlice(d), MaxBadFraction = 1 }, from))
            .ToArray();
        var readers = nodes.Select(n => n.ReadAllAsync().GetAsyncEnumerator()).ToArray();
        var result = new List<Step>();
        DataPosition after = from ?? DataPosition.StartOf(0, 3, nodes[0].Options.OrderFingerprint);
        try
        {
            for (long k = 0; k < steps; k++)
            {
                var reader = readers[plan.NodeOf(k)];
                Assert.True(await reader.MoveNextAsync());
                using var batch = reader.Current;
                // Every sample of the batch belongs to global batch k (counted from the plan's origin).
                Assert.All(batch.Samples, s => Assert.Equal(k, (s.Global - plan.Origin) / plan.GlobalBatch));
                result.Add(new Step(Enumerable.Range(0, plan.Ranks)
                    .Select(r => plan.RankPart(batch.Samples, r).Select(i => batch.Samples[i].Key).ToArray()).ToArray()));
                after = batch.PositionAfter;
            }
        }
        finally
        {
            foreach (var r in readers) await r.DisposeAsync();
            foreach (var n in nodes) await n.DisposeAsync();
        }
        return (result, after, nodes.Sum(n => n.Stats.Good));
    }

    /// <summary>The truth: one plain pipeline, one sample per batch, grouped by run-wide number into global batches.</summary>
    private async Task<List<string[]>> Truth(string[] shards, int globalBatch, int steps, long origin = 0)
    {
        await using var p = DataPipeline.Start(Options(shards) with { BatchSize = 1, MaxBadFraction = 1 });
        var groups = new SortedDictionary<long, List<string>>();
        await foreach (var b in p.ReadAllAsync())
        {
            using (b)
            {
                var s = b.Samples[0];
                long g = (s.Global - origin) / globalBatch;
                if (s.Global >= origin && g >= steps) break;
                if (s.Global >= origin) (groups.TryGetValue(g, out var l) ? l : groups[g] = []).Add(s.Key);
            }
        }
        return Enumerable.Range(0, steps).Select(k => groups.TryGetValue(k, out var l) ? l.ToArray() : []).ToList();
    }

    [Theory]
    [InlineData(3, 1, 3)]   // the case: 2 nodes × 2 ranks → 1 node × 3 ranks
    [InlineData(5, 3, 1)]   // → 3 nodes × 1 rank, checkpoint past the first epoch boundary
    [InlineData(4, 3, 4)]
    public async Task A_run_resumed_with_other_node_and_rank_counts_consumes_the_same_samples_in_the_same_steps(int checkpointAt, int nodes, int ranks)
    {
        const int steps = 14;   // 168 samples: three epoch boundaries
        var truth = await Truth(_shards, Global, steps);

        var before = ElasticPlan.Create(GlobalBatchPolicy.KeepGlobalBatch, Global, microBatch: 3, accumulation: 2, dataNodes: 2, ranks: 2, origin: 0);
        Assert.Equal(2, before.Accumulation);   // 12 = 3 × 2 ranks × 2
        var uninterrupted = await Train(_shards, before, null, steps);
        Assert.Equal(truth, uninterrupted.Steps.Select(s => s.All));

        var first = await Train(_shards, before, null, checkpointAt);
        string saved = first.After.ToJson();   // what goes into the checkpoint
        var position = DataPosition.FromJson(saved);
        Assert.Equal(checkpointAt * Global, position.Global);

        var after = ElasticPlan.Create(GlobalBatchPolicy.KeepGlobalBatch, Global, microBatch: 1, accumulation: 1, nodes, ranks, origin: position.Global);
        Assert.Equal(Global / ranks, after.Accumulation);   // the global batch is kept through accumulation
        var resumed = await Train(_shards, after, position, steps - checkpointAt);

        var expected = uninterrupted.Steps.Skip(checkpointAt).Select(s => s.All).ToList();
        Assert.Equal(expected, resumed.Steps.Select(s => s.All));
        // Each rank trained on its own share of each step: equal parts, in order, nothing twice.
        foreach (var (step, i) in resumed.Steps.Select((s, i) => (s, i)))
            for (int r = 0; r < ranks; r++)
            {
                var (b, e) = after.RankShare(r);
                Assert.Equal(expected[i][b..e], step.Ranks[r]);
            }
    }

    [Fact]
    public async Task Keeping_the_micro_batch_instead_changes_the_step_size_but_not_the_sample_sequence()
    {
        var before = ElasticPlan.Create(GlobalBatchPolicy.KeepMicroBatch, 0, microBatch: 3, accumulation: 2, dataNodes: 2, ranks: 2, origin: 0);
        Assert.Equal(12, before.GlobalBatch);
        var first = await Train(_shards, before, null, 4);
        var after = ElasticPlan.Create(GlobalBatchPolicy.KeepMicroBatch, 0, microBatch: 3, accumulation: 2, dataNodes: 1, ranks: 3, origin: first.After.Global);
        Assert.Equal(18, after.GlobalBatch);
        var resumed = await Train(_shards, after, first.After, 5);

        var truth = (await Truth(_shards, 1, 48 + 90)).Select(k => k.Single()).ToArray();
        Assert.Equal(truth[..48], first.Steps.SelectMany(s => s.All));
        Assert.Equal(truth[48..], resumed.Steps.SelectMany(s => s.All));
        Assert.All(resumed.Steps, s => Assert.Equal(18, s.All.Length));
    }

    [Fact]
    public async Task A_bad_sample_leaves_a_hole_in_its_step_instead_of_shifting_later_steps()
    {
        // A sixth shard whose samples 2 and 7 are empty files (bad).
        string bad = Path.Combine(_dir, "train-000005.tar");
        var entries = new List<(string, byte[])>();
        for (int i = 0; i < 10; i++)
            entries.AddRange(ShardBuilder.Sample($"b-{i:D4}", i is 2 or 7 ? [] : ShardBuilder.Jpeg(40, 32, 5000 + i)));
        File.WriteAllBytes(bad, ShardBuilder.Tar(entries));
        string[] shards = [.. _shards, bad];
        const int steps = 12;
        var truth = await Truth(shards, Global, steps);
        Assert.Contains(truth, t => t.Length < Global);   // the bad samples fall inside these steps

        var before = ElasticPlan.Create(GlobalBatchPolicy.KeepGlobalBatch, Global, 3, 2, 2, 2, 0);
        var first = await Train(shards, before, null, 4);
        var after = ElasticPlan.Create(GlobalBatchPolicy.KeepGlobalBatch, Global, 2, 1, 1, 3, first.After.Global);
        var resumed = await Train(shards, after, first.After, steps - 4);
        Assert.Equal(truth, first.Steps.Concat(resumed.Steps).Select(s => s.All));
    }

    [Fact]
    public void Plans_refuse_a_global_batch_they_cannot_keep()
    {
        var e = Assert.Throws<ArgumentException>(() => ElasticPlan.Create(GlobalBatchPolicy.KeepGlobalBatch, 12, microBatch: 5, 1, 1, 2, 0));
        Assert.Contains("keep-micro-batch", e.Message);
        Assert.Throws<ArgumentException>(() => new DataSlice(12, 0, 12, Stride: 2, Phase: 2).Validate());
    }

    public void Dispose() => Directory.Delete(_dir, true);
}
