using LiteVae.Model.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributed;

/// <summary>
/// The data-parallel contract on a small conv net with a plain loop: R ranks with per-rank batch b and
/// averaged gradients follow the same trajectory as one rank with batch R·b.
/// </summary>
[Collection(DistributedCollection.Name)]
public class DataParallelEquivalenceTests
{
    private const int Steps = 20, GlobalBatch = 8, Size = 12;

    private static Sequential Net()
    {
        var net = nn.Sequential(
            ("conv_in", nn.Conv2d(3, 8, 3, padding: 1)),
            ("act", nn.SiLU()),
            ("conv_out", nn.Conv2d(8, 3, 3, padding: 1)));
        // Deterministic start from System.Random (no global torch RNG shared between threads).
        var rng = new Random(42);
        using (no_grad())
            foreach (var p in net.parameters())
                p.copy_(tensor(Enumerable.Range(0, (int)p.numel()).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.4f).ToArray()).reshape(p.shape));
        return net;
    }

    /// <summary>The global batch of a step: the same samples whatever the number of ranks.</summary>
    private static float[] Batch(int step)
    {
        var rng = new Random(1000 + step);
        return Enumerable.Range(0, GlobalBatch * 3 * Size * Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static Tensor Slice(int step, DataParallelLayout layout)
    {
        using var all = tensor(Batch(step)).reshape(GlobalBatch, 3, Size, Size);
        return all.index_select(0, tensor(layout.Positions().Select(p => (long)p).ToArray()));
    }

    /// <summary>Trains one rank; returns its final weights as one flat array and the weight checks.</summary>
    private static (float[] Weights, List<bool> Checks) Train(ICollective c, bool reduce)
    {
        var layout = DataParallelLayout.Equal(c.Rank, c.WorldSize, GlobalBatch / c.WorldSize, 1);
        using var net = Net();
        var ps = net.parameters().ToList();
        if (c.Rank > 0)
            using (no_grad()) ps[0].add_(1.0);   // a wrong start on the other ranks: the broadcast must fix it
        WeightConsistency.BroadcastFromRank0(c, ps);
        using var adam = optim.Adam(ps, lr: 1e-2);
        var checks = new List<bool>();
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            adam.zero_grad();
            var x = Slice(step, layout);
            var loss = nn.functional.mse_loss(net.call(x), x.flip(3).mul(0.5));
            loss.backward();
            if (reduce)
            {
                var flat = cat(ps.Select(p => p.grad!.reshape(-1)).ToArray());
                GradientAllReduce.Average(c, flat, bucketElements: 100);   // several buckets, one grouped call
                long offset = 0;
                foreach (var p in ps)
                {
                    p.grad!.copy_(flat.narrow(0, offset, p.numel()).view_as(p));
                    offset += p.numel();
                }
            }
            adam.step();
            if (step % 5 == 4)
            {
                using var flatW = cat(ps.Select(p => p.detach().reshape(-1)).ToArray());
                checks.Add(WeightConsistency.Check(c, flatW).Identical);
            }
        }
        using var w = cat(ps.Select(p => p.detach().reshape(-1)).ToArray());
        return (w.data<float>().ToArray(), checks);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void RRanksWithBatchBMatchOneRankWithBatchRBAfter20Steps(int world)
    {
        var single = TcpGroup.Run(1, (_, c) => Train(c, reduce: true))[0].Weights;
        var ranks = TcpGroup.Run(world, (_, c) => Train(c, reduce: true));
        double maxDiff = single.Zip(ranks[0].Weights, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff < 2e-5, $"max |w_{world} - w_1| = {maxDiff:g3}");
        foreach (var r in ranks)
        {
            Assert.Equal(ranks[0].Weights, r.Weights);            // bit-identical replicas
            Assert.All(r.Checks, Assert.True);                     // and the periodic check agreed
        }

        // Control: without the all-reduce the replicas drift apart and away from the single-rank run,
        // so the tolerance above is meaningful.
        var unsynced = TcpGroup.Run(world, (_, c) => Train(c, reduce: false));
        double drift = single.Zip(unsynced[0].Weights, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(drift > 100 * maxDiff && drift > 1e-3, $"unsynchronised drift {drift:g3} vs synchronised {maxDiff:g3}");
        Assert.Contains(false, unsynced[1].Checks);
    }
}
