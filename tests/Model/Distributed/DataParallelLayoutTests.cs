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
        var layouts = Enumerable.Range(0, world).Select(r => DataParallelLayout.Equal(r, world, micro, accumulation)).ToList();
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
        var layout = DataParallelLayout.Equal(1, 2, 4, 1);
        var e = Assert.Throws<ArgumentException>(() => layout.TakeSlice(Enumerable.Range(0, 7).ToList()));
        Assert.Contains("8 samples", e.Message);
        Assert.NotEmpty(DataParallelLayout.Equal(2, 2, 4, 1).Problems());
        Assert.NotEmpty(DataParallelLayout.Equal(0, 1, 0, 1).Problems());
    }

    [Fact]
    public void A_short_batch_splits_near_evenly_and_the_scales_weigh_every_sample_alike()
    {
        // 11 samples (a batch of 12 with one bad sample skipped) over 2 ranks and 3 micro-batches.
        var layouts = Enumerable.Range(0, 2).Select(r => new DataParallelLayout(r, 2, 3, 11)).ToList();
        var global = Enumerable.Range(0, 11).ToList();
        Assert.Equal(global, layouts.SelectMany(l => l.TakeSlice(global)).Order());
        Assert.Equal([6, 5], layouts.Select(l => l.PerRankBatch));
        Assert.Equal([(0, 4), (4, 4), (8, 3)], Enumerable.Range(0, 3).Select(m => layouts[0].Micro(m)));
        // Per sample, the weight of its gradient after the all-reduce average is scale / part / ranks = 1 / 11.
        foreach (var l in layouts)
            for (int m = 0; m < 3; m++)
                Assert.Equal(1.0 / 11, l.Scale(m) / l.RankPart(m).Count / l.WorldSize, 12);
        Assert.Equal(1.0 / 3, DataParallelLayout.Equal(0, 2, 2, 3).Scale(1), 12);
    }
}
