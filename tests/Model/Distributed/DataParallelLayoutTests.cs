using LiteVae.Model.Distributed;

namespace LiteVae.Model.Tests.Distributed;

public class DataParallelLayoutTests
{
    [Fact]
    public void RanksTakeDisjointSamplesThatCoverTheGlobalBatchAndEachGlobalMicroBatch()
    {
        const int world = 3, micro = 2, accumulation = 4;
        var global = Enumerable.Range(100, micro * world * accumulation).ToList();
        var taken = new List<int>();
        var layouts = Enumerable.Range(0, world).Select(r => new DataParallelLayout(r, world, micro, accumulation)).ToList();
        foreach (var layout in layouts)
        {
            Assert.Equal(24, layout.GlobalBatch);
            Assert.Equal(8, layout.PerRankBatch);
            Assert.Empty(layout.Problems());
            taken.AddRange(layout.TakeSlice(global));
        }
        Assert.Equal(global, taken.Order().ToList());   // disjoint and complete
        // Global micro-batch m (6 samples) is exactly the ranks' micro-batches m, in rank order: what a
        // single rank with micro-batches of 6 would see.
        for (int m = 0; m < accumulation; m++)
        {
            var fromRanks = layouts.SelectMany(l => l.TakeSlice(global).Skip(m * micro).Take(micro)).ToList();
            Assert.Equal(global.Skip(m * 6).Take(6), fromRanks);
        }
    }

    [Fact]
    public void WrongSizesAndPositionsAreReported()
    {
        var layout = new DataParallelLayout(1, 2, 4, 1);
        var e = Assert.Throws<ArgumentException>(() => layout.TakeSlice(Enumerable.Range(0, 7).ToList()));
        Assert.Contains("8 samples", e.Message);
        Assert.NotEmpty(new DataParallelLayout(2, 2, 4, 1).Problems());
        Assert.NotEmpty(new DataParallelLayout(0, 1, 0, 1).Problems());
    }
}
