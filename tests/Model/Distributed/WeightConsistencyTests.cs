using LiteVae.Model.Distributed;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributed;

[Collection(DistributedCollection.Name)]
public class WeightConsistencyTests
{
    private static float[] Values(int n) => Enumerable.Range(0, n).Select(i => (float)Math.Sin(i * 0.37) * 0.05f).ToArray();

    [Fact]
    public void IdenticalBuffersAgreeAndOneUlpOrASwapOnOneRankIsFoundAndNamed()
    {
        var checks = TcpGroup.Run(3, (rank, c) =>
        {
            using var w = tensor(Values(1001));
            using var b = tensor(Values(37)).to(ScalarType.BFloat16);
            var same = WeightConsistency.Check(c, w, b);
            if (rank == 2)
            {
                // One ulp on one element.
                float v = w[500].item<float>();
                w[500] = tensor(MathF.BitIncrement(v));
            }
            var ulp = WeightConsistency.Check(c, w, b);
            if (rank == 2)
                w[500] = tensor(Values(1001)[500]);
            if (rank == 1)
            {
                // Same multiset of values, two positions swapped: only the weighted sum sees it.
                var x = w[3].item<float>();
                var y = w[700].item<float>();
                w[3] = tensor(y);
                w[700] = tensor(x);
            }
            var swap = WeightConsistency.Check(c, w, b);
            return (same, ulp, swap);
        });
        foreach (var (same, ulp, swap) in results(checks))
        {
            Assert.True(same.Identical, same.Describe());
            Assert.False(ulp.Identical);
            Assert.Equal(new[] { 2 }, ulp.DivergedRanks);
            Assert.Equal(new[] { 1 }, swap.DivergedRanks);
            Assert.Contains("rank(s) 1", swap.Describe());
        }

        static IEnumerable<(WeightCheck, WeightCheck, WeightCheck)> results((WeightCheck, WeightCheck, WeightCheck)[] r) => r;
    }

    [Fact]
    public void ChecksumSeesSignAndExponentAndIsStableForEqualContent()
    {
        using var a = tensor(new float[] { 1f, -2f, 0.5f });
        using var b = tensor(new float[] { 1f, 2f, 0.5f });
        using var c = tensor(new float[] { 1f, -2f, 0.25f });
        using var a2 = a.clone();
        long[] Sum(Tensor t) { using var s = WeightConsistency.Checksum(t); return s.data<long>().ToArray(); }
        Assert.Equal(Sum(a), Sum(a2));
        Assert.NotEqual(Sum(a), Sum(b));
        Assert.NotEqual(Sum(a), Sum(c));
    }

    [Fact]
    public void BroadcastFromRank0MakesDifferentStartsIdentical()
    {
        var results = TcpGroup.Run(3, (rank, c) =>
        {
            using var w = full(50, (float)rank);
            using var m = full(7, (double)rank * 3, dtype: ScalarType.Float64);
            bool before = WeightConsistency.Check(c, w).Identical;
            WeightConsistency.BroadcastFromRank0(c, [w, m]);
            return (before, after: WeightConsistency.Check(c, w, m).Identical, w: w[49].item<float>(), m: m[0].item<double>());
        });
        Assert.All(results, r =>
        {
            Assert.False(r.before);
            Assert.True(r.after);
            Assert.Equal(0f, r.w);
            Assert.Equal(0.0, r.m);
        });
    }
}
