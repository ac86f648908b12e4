using LiteVae.Model.Distributed;

namespace LiteVae.Model.Tests.Distributed;

public class DataParallelLayoutTests
{
    [Fact]
    public void RanksTakeDisjointSlicesThatCoverTheGlobalBatch()
    {
        const int world = 3, micro = 2, accumulation = 4;
        var global = Enumerable.Range(100, micro * world * accumulation).ToList();
        var taken = new List<int>();
        for (int r = 0; r < world; r++)
        {
            var layout = new DataParallelLayout(r, world, micro, accumulation);
            Assert.Equal(24, layout.GlobalBatch);
            Assert.Equal(8, layout.PerRankBatch);
            Assert.Empty(layout.Problems());
            taken.AddRange(layout.TakeSlice(global));
        }
        Assert.Equal(global, taken);   // disjoint, complete, in the global order
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
