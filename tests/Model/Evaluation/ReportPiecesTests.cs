using LiteVae.Model.Evaluation;

namespace LiteVae.Model.Tests.Evaluation;

/// <summary>Grid layout, the bounded worst-images set, and the progress estimate.</summary>
public class ReportPiecesTests
{
    private static byte[] Planar(int h, int w, Func<int, int, int, byte> pixel)
    {
        var b = new byte[3 * h * w];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    b[(c * h + y) * w + x] = pixel(c, y, x);
        return b;
    }

    [Fact]
    public void GridPutsOriginalsOverReconstructionsWithWhiteGaps()
    {
        const int h = 5, w = 7;
        var pairs = Enumerable.Range(0, 3).Select(i => new ImagePair(i, $"k{i}",
            Planar(h, w, (c, y, x) => (byte)(10 * i + c + y + x)), Planar(h, w, (c, y, x) => (byte)(100 + 10 * i + c)), 0)).ToList();
        var grid = ImageGrid.Compose(pairs, h, w);
        Assert.Equal(3 * w + 2 * ImageGrid.Gap, grid.Width);
        Assert.Equal(2 * h + ImageGrid.Gap, grid.Height);
        byte[] At(int x, int y) => grid.Pixels.AsSpan((y * grid.Width + x) * 3, 3).ToArray();
        // Column 2, original pixel (y 3, x 4): 20 + c + 7; reconstruction right below: 120 + c.
        int left = 2 * (w + ImageGrid.Gap);
        Assert.Equal(new byte[] { 27, 28, 29 }, At(left + 4, 3));
        Assert.Equal(new byte[] { 120, 121, 122 }, At(left + 4, h + ImageGrid.Gap + 3));
        Assert.Equal(new byte[] { 255, 255, 255 }, At(w, 0));          // gap between columns
        Assert.Equal(new byte[] { 255, 255, 255 }, At(0, h));          // gap between rows
    }

    [Fact]
    public void WorstSetEqualsSortingEverythingAndKeepingTheTop()
    {
        var rng = new Random(3);
        var scores = Enumerable.Range(0, 200).Select(_ => Math.Round(rng.NextDouble() * 20) / 2).ToArray(); // many ties
        var worst = new CapturedImages(7, keepWorst: true);
        var first = new CapturedImages(7, keepWorst: false);
        for (int i = 0; i < scores.Length; i++)
        {
            var pair = new ImagePair(i, $"k{i}", [], [], scores[i]);
            if (worst.Wants(scores[i])) worst.Offer(pair);
            first.Offer(pair);
        }
        var expected = scores.Select((s, i) => (s, i)).OrderByDescending(t => t.s).ThenBy(t => t.i).Take(7).Select(t => (long)t.i);
        Assert.Equal(expected, worst.Pairs.Select(p => p.Index));
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), first.Pairs.Select(p => p.Index));
        Assert.False(new CapturedImages(0, true).Wants(1e9));
    }

    [Fact]
    public void ProgressDescribesRateAndTimeLeft()
    {
        var p = new EvalProgress(250, 1000, TimeSpan.FromSeconds(10));
        Assert.Equal(25, p.ImagesPerSecond, 9);
        Assert.Equal(TimeSpan.FromSeconds(30), p.Remaining);
        Assert.Equal("eval 250/1000 images (25%), 25.0 img/s, 10.0s elapsed, ETA 30.0s", p.Describe());
        Assert.Null(new EvalProgress(250, null, TimeSpan.FromSeconds(10)).Remaining);
    }
}
