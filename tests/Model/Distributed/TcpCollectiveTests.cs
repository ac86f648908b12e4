using System.Diagnostics;
using LiteVae.Model.Distributed;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributed;

[Collection(DistributedCollection.Name)]
public class TcpCollectiveTests
{
    /// <summary>Rank r's input: values from System.Random (independent of torch), varied magnitudes.</summary>
    private static float[] Input(int rank, int n, int seed = 0)
    {
        var rng = new Random(1000 * seed + rank);
        return Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 4)))).ToArray();
    }

    public static TheoryData<int, int> WorldsAndSizes()
    {
        var d = new TheoryData<int, int>();
        foreach (int world in new[] { 1, 2, 3, 4 })
            foreach (int n in new[] { 1, 3, 1001, 4099 })
                d.Add(world, n);
        return d;
    }

    [Theory]
    [MemberData(nameof(WorldsAndSizes))]
    public void AllReduceSumAndAverageMatchAnIndependentSumAndAreIdenticalOnEveryRank(int world, int n)
    {
        var results = TcpGroup.Run(world, (rank, c) =>
        {
            using var sum = tensor(Input(rank, n));
            c.AllReduce(sum, ReduceOp.Sum);
            using var avg = tensor(Input(rank, n));
            c.AllReduce(avg, ReduceOp.Average);
            return (Sum: sum.data<float>().ToArray(), Avg: avg.data<float>().ToArray());
        });
        var inputs = Enumerable.Range(0, world).Select(r => Input(r, n)).ToArray();
        for (int i = 0; i < n; i++)
        {
            double exact = inputs.Sum(x => (double)x[i]);
            double scale = inputs.Sum(x => Math.Abs((double)x[i])) + 1e-30;
            Assert.True(Math.Abs(results[0].Sum[i] - exact) <= 4e-7 * scale * world, $"element {i}: {results[0].Sum[i]} vs {exact}");
            Assert.True(Math.Abs(results[0].Avg[i] - exact / world) <= 4e-7 * scale, $"element {i}: {results[0].Avg[i]} vs {exact / world}");
        }
        foreach (var r in results.Skip(1))
        {
            Assert.Equal(results[0].Sum, r.Sum);   // bit-identical, not just close
            Assert.Equal(results[0].Avg, r.Avg);
        }
    }

    [Fact]
    public void ResultsAreReproducibleRunToRun()
    {
        float[] Once() => TcpGroup.Run(3, (rank, c) =>
        {
            using var t = tensor(Input(rank, 777, seed: 5));
            c.AllReduce(t, ReduceOp.Average);
            return t.data<float>().ToArray();
        })[1];
        Assert.Equal(Once(), Once());
    }

    [Fact]
    public void TwoRankSumEqualsTheFloat32SumOfBothInputs()
    {
        // With two ranks each element is one IEEE addition: the result must be exactly a + b in fp32.
        var results = TcpGroup.Run(2, (rank, c) =>
        {
            using var t = tensor(Input(rank, 513, seed: 9));
            c.AllReduce(t, ReduceOp.Sum);
            return t.data<float>().ToArray();
        });
        var a = Input(0, 513, 9);
        var b = Input(1, 513, 9);
        Assert.Equal(a.Zip(b, (x, y) => x + y).ToArray(), results[0]);
    }

    [Fact]
    public void Int64SumIsExactAndAverageOfIntegersIsRefused()
    {
        var results = TcpGroup.Run(3, (rank, c) =>
        {
            using var t = tensor(new long[] { 1L << 60, rank, -7 * rank, long.MaxValue / 4 });
            c.AllReduce(t, ReduceOp.Sum);
            var ex = Assert.Throws<ArgumentException>(() => c.AllReduce(t, ReduceOp.Average));
            Assert.Contains("Sum", ex.Message);
            return t.data<long>().ToArray();
        });
        Assert.Equal(new[] { 3 * (1L << 60), 0 + 1 + 2, -7 * 3, 3 * (long.MaxValue / 4) }, results[2]);
    }

    [Fact]
    public void ListsMixedSizesBf16Float64AndNonContiguousInputsBehave()
    {
        var results = TcpGroup.Run(3, (rank, c) =>
        {
            using var a = tensor(Input(rank, 5));
            using var b = tensor(Input(rank + 10, 17));
            c.AllReduce([a, b], ReduceOp.Sum);
            using var h = tensor(new float[] { rank + 0.5f, -rank }).to(ScalarType.BFloat16);
            c.AllReduce(h, ReduceOp.Sum);
            using var d = tensor(new double[] { rank * 1e-12, 1 });
            c.AllReduce(d, ReduceOp.Average);
            using var m = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
            using var tcol = m.t();
            var ex = Assert.Throws<ArgumentException>(() => c.AllReduce(tcol, ReduceOp.Sum));
            Assert.Contains("contiguous", ex.Message);
            using var mixedA = zeros(2);
            using var mixedB = zeros(2, dtype: ScalarType.Float64);
            Assert.Throws<ArgumentException>(() => c.AllReduce([mixedA, mixedB], ReduceOp.Sum));
            return (A: a.data<float>().ToArray(), B: b.data<float>().ToArray(),
                H: h.to(ScalarType.Float32).data<float>().ToArray(), D: d.data<double>().ToArray());
        });
        var expA = Enumerable.Range(0, 5).Select(i => Enumerable.Range(0, 3).Sum(r => (double)Input(r, 5)[i])).ToArray();
        var expB = Enumerable.Range(0, 17).Select(i => Enumerable.Range(0, 3).Sum(r => (double)Input(r + 10, 17)[i])).ToArray();
        for (int i = 0; i < 5; i++) Assert.Equal(expA[i], results[0].A[i], 1e-3);
        for (int i = 0; i < 17; i++) Assert.Equal(expB[i], results[0].B[i], 1e-3);
        Assert.Equal(new[] { 4.5f, -3f }, results[1].H);                 // 0.5+1.5+2.5, 0-1-2 (exact in bf16)
        Assert.Equal(1e-12, results[2].D[0], 1e-24);
        Assert.Equal(1.0, results[2].D[1]);
        Assert.Equal(results[0].A, results[2].A);
    }

    [Fact]
    public void BroadcastCopiesTheRootsBytesFromEveryRootAcrossPieces()
    {
        const int n = (4 << 20) / 4 + 333;   // crosses the 4 MiB pipelining piece
        var results = TcpGroup.Run(3, (rank, c) =>
        {
            var got = new List<float[]>();
            for (int root = 0; root < 3; root++)
            {
                using var t = full(n, (float)(rank * 10 + root));
                t[n - 1] = tensor((float)(rank * 100));
                c.Broadcast(t, root);
                got.Add([t[0].item<float>(), t[n / 2].item<float>(), t[n - 1].item<float>()]);
            }
            using var i8 = tensor(new byte[] { (byte)rank, 7 });
            c.Broadcast(i8, 2);
            got.Add(i8.data<byte>().ToArray().Select(b => (float)b).ToArray());
            return got;
        });
        foreach (var r in results)
        {
            for (int root = 0; root < 3; root++)
                Assert.Equal(new[] { root * 10f + root, root * 10f + root, root * 100f }, r[root]);
            Assert.Equal(new[] { 2f, 7f }, r[3]);
        }
    }

    [Fact]
    public void BarrierReleasesNoRankBeforeTheLastArrives()
    {
        var times = TcpGroup.Run(3, (rank, c) =>
        {
            Thread.Sleep(rank * 300);
            long arrived = Stopwatch.GetTimestamp();
            c.Barrier();
            return (arrived, left: Stopwatch.GetTimestamp());
        });
        long lastArrival = times.Max(t => t.arrived);
        Assert.All(times, t => Assert.True(t.left >= lastArrival));
    }

    [Fact]
    public void RanksCallingDifferentSizesFailWithAClearErrorInsteadOfMixingData()
    {
        var errors = new Exception?[2];
        TcpGroup.Run(2, (rank, c) =>
        {
            using var t = zeros(rank == 0 ? 10 : 11);
            errors[rank] = Record.Exception(() => c.AllReduce(t, ReduceOp.Sum));
            Assert.True(c.IsBroken);
            return 0;
        }, TcpGroup.Options(opTimeoutS: 5));
        Assert.All(errors, e => Assert.IsType<CollectiveException>(e));
        Assert.Contains(errors, e => e!.Message.Contains("ranks disagree"));
    }

    [Fact]
    public void AbortFromAnotherThreadUnblocksAWaitingRankAndBreaksThePeerToo()
    {
        var results = TcpGroup.Run(2, (rank, c) =>
        {
            if (rank == 1)
            {
                // Never joins the all-reduce; its next operation must see the broken ring.
                Thread.Sleep(1500);
                var e1 = Record.Exception(() => c.Barrier());
                return (Error: e1, Seconds: 0.0);
            }
            var aborter = new Thread(() => { Thread.Sleep(300); c.Abort("member lost (test)"); });
            aborter.Start();
            var sw = Stopwatch.StartNew();
            using var t = ones(1000);
            var e0 = Record.Exception(() => c.AllReduce(t, ReduceOp.Sum));
            aborter.Join();
            Assert.True(c.IsBroken);
            Assert.Contains("member lost (test)", c.FailureReason);
            Assert.Throws<CollectiveException>(() => c.Barrier());   // a broken group stays broken
            return (Error: e0, Seconds: sw.Elapsed.TotalSeconds);
        }, TcpGroup.Options(opTimeoutS: 30));
        Assert.IsType<CollectiveException>(results[0].Error);
        Assert.True(results[0].Seconds < 5, $"abort took {results[0].Seconds:0.0} s");
        Assert.IsType<CollectiveException>(results[1].Error);
    }

    [Fact]
    public void ALostPeerFailsTheOperationQuicklyInsteadOfWaitingForTheTimeout()
    {
        var results = TcpGroup.Run(3, (rank, c) =>
        {
            if (rank == 2)
            {
                Thread.Sleep(300);
                c.Dispose();   // what a killed process looks like to its neighbours: closed sockets
                return (Error: (Exception?)null, Seconds: 0.0);
            }
            var sw = Stopwatch.StartNew();
            using var t = ones(100);
            var e = Record.Exception(() => c.AllReduce(t, ReduceOp.Sum));
            return (Error: e, Seconds: sw.Elapsed.TotalSeconds);
        }, TcpGroup.Options(opTimeoutS: 60));
        foreach (var r in results.Take(2))
        {
            Assert.IsType<CollectiveException>(r.Error);
            Assert.True(r.Seconds < 10, $"took {r.Seconds:0.0} s");
        }
    }

    [Fact]
    public void ASilentPeerTimesOutWithAMessageNamingIt()
    {
        var results = TcpGroup.Run(2, (rank, c) =>
        {
            if (rank == 1)
            {
                Thread.Sleep(2500);
                return (Exception?)null;
            }
            using var t = ones(4);
            return Record.Exception(() => c.AllReduce(t, ReduceOp.Sum));
        }, TcpGroup.Options(opTimeoutS: 1));
        var e = Assert.IsType<CollectiveException>(results[0]);
        Assert.Contains("rank 1", e.Message);
    }

    [Fact]
    public void JoinTimesOutNamingTheMissingRanksAndStaleIdsAreRefused()
    {
        var options = TcpGroup.Options(joinTimeoutS: 1.5);
        var id = TcpCollective.CreateGroupId(options);
        var e = Assert.Throws<CollectiveException>(() => TcpCollective.Join(id, 0, 3, options));
        Assert.Contains("1, 2", e.Message);

        // A rank holding an id of another generation (same address, other nonce) is refused.
        var live = TcpCollective.CreateGroupId(TcpGroup.Options());
        var forged = (byte[])live.Bytes.Clone();
        forged[10] ^= 0xFF;
        var e2 = Assert.Throws<CollectiveException>(() => TcpCollective.Join(live with { Bytes = forged }, 1, 2, TcpGroup.Options(joinTimeoutS: 5)));
        Assert.Contains("another group", e2.Message);
    }

    [Fact]
    public void GroupIdsRoundTripThroughText()
    {
        var id = TcpCollective.CreateGroupId(TcpGroup.Options(joinTimeoutS: 1));
        Assert.Equal(id, CollectiveGroupId.ParseHex(id.ToHex()));
        Assert.Throws<FormatException>(() => CollectiveGroupId.ParseHex("tcp:zz"));
        Assert.Throws<FormatException>(() => CollectiveGroupId.ParseHex("nothing"));
    }
}
