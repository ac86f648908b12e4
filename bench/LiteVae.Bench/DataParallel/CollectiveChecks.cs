using LiteVae.Model.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench.DataParallel;

/// <summary>
/// Correctness checks run on the real backend before anything is timed. On CUDA the first one verifies
/// the stream assumption the NCCL collective rests on: the all-reduce is enqueued right after the buffer's
/// last write, which itself waits behind a long matmul chain on the default stream. If NCCL ran on a
/// stream not ordered after libtorch's, it would reduce the buffer's earlier contents (zeros).
/// </summary>
internal static class CollectiveChecks
{
    public static Dictionary<string, object?> Run(ICollective c, Device device, Action<string> log)
    {
        int n = c.WorldSize, r = c.Rank;
        var failures = new List<string>();
        void Expect(bool ok, string what) { if (!ok) failures.Add(what); }

        using (var scope = NewDisposeScope())
        {
            const long len = 1 << 22;
            var y = zeros(len, ScalarType.Float32, device);
            var heavy = randn(new long[] { 2048, 2048 }, ScalarType.Float32, device);
            for (int i = 0; i < 12; i++)
                heavy = heavy.mm(heavy).div_(heavy.abs().max().add_(1e-6));
            var late = heavy.sum().mul_(0).nan_to_num_(0, 0, 0);   // zero, but only once the chain is done
            y.fill_(r + 1).add_(late);
            c.AllReduce(y, ReduceOp.Sum);                          // no synchronisation in between
            double expect = n * (n + 1) / 2.0;
            var (min, max) = (y.min().item<float>(), y.max().item<float>());
            Expect(min == expect && max == expect, $"ordered sum: got [{min}, {max}], expected {expect}");
        }
        using (var scope = NewDisposeScope())
        {
            var h = full(1001, r + 1.0, ScalarType.BFloat16, device);
            c.AllReduce(h, ReduceOp.Average);
            float got = h.to_type(ScalarType.Float32).max().item<float>();
            Expect(got == (n + 1) / 2.0f, $"bf16 average: got {got}, expected {(n + 1) / 2.0}");
            var ints = full(3, (long)r, ScalarType.Int64, device);
            var f2 = full(5, r * 2.0, ScalarType.Float32, device);
            c.AllReduce([f2, f2.clone()], ReduceOp.Sum);
            Expect(f2[4].item<float>() == n * (n - 1), "grouped sum");
            c.AllReduce(ints, ReduceOp.Sum);
            Expect(ints[2].item<long>() == (long)n * (n - 1) / 2, "int64 sum");
            var b = full(7, (float)r, ScalarType.Float32, device);
            c.Broadcast(b, n - 1);
            Expect(b[6].item<float>() == n - 1, "broadcast from the last rank");
            c.Barrier();
            var w = arange(0, 5000, 1, ScalarType.Float32, device).div_(7);
            var check = WeightConsistency.Check(c, w);
            Expect(check.Identical, "weight check on identical buffers: " + check.Describe());
            if (r == n - 1 && n > 1) w[17] = tensor(-1f, device: device);
            var check2 = WeightConsistency.Check(c, w);
            Expect(n == 1 || check2.DivergedRanks.SequenceEqual([n - 1]), "weight check finds the changed rank: " + check2.Describe());
        }
        c.ThrowIfBroken();
        if (r == 0) log(failures.Count == 0 ? $"collective checks passed on {n} rank(s) ({c.Backend})" : "collective checks FAILED: " + string.Join("; ", failures));
        return new() { ["ok"] = failures.Count == 0, ["failures"] = failures };
    }
}
