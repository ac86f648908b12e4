using LiteVae.Model.Metrics;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Metrics;

/// <summary>Streaming feature statistics and the Fréchet distance.</summary>
public class FrechetTests
{
    private static Tensor Features(int n, int d, int seed, double noise = 0)
    {
        var g = new Generator((ulong)seed);
        using var basis = randn([d, d], float64, generator: g);
        using var z = randn([n, d], float64, generator: g);
        using var f = z.matmul(basis).add(2.0);
        if (noise == 0) return f.clone();
        using var e = randn([n, d], float64, generator: new Generator(999)).mul(noise);
        return f + e;
    }

    private static FeatureStatistics Stats(Tensor features, int chunk = 7)
    {
        var s = new FeatureStatistics((int)features.shape[1]);
        for (long i = 0; i < features.shape[0]; i += chunk)
        {
            using var part = features[TensorIndex.Slice(i, Math.Min(i + chunk, features.shape[0]))];
            s.Add(part);
        }
        return s;
    }

    [Fact]
    public void DistanceOfASetWithItselfIsZero()
    {
        using var f = Features(300, 16, 1);
        using var a = Stats(f);
        using var b = Stats(f, chunk: 50);
        var r = FrechetDistance.Compute(a, b);
        Assert.Equal(0.0, r.Value, 1e-6);
        Assert.True(r.SqrtResidual < 1e-10, $"residual {r.SqrtResidual}");
    }

    [Fact]
    public void DistanceOfARankDeficientSetWithItselfIsZero()
    {
        // Fewer images than dimensions: the covariance is singular, as at the start of a 2048-d FID.
        using var f = Features(20, 64, 2);
        using var a = Stats(f);
        Assert.Equal(0.0, FrechetDistance.Compute(a, a).Value, 1e-6);
    }

    [Fact]
    public void DistanceIsSymmetricAndGrowsWithNoise()
    {
        using var clean = Features(400, 12, 3);
        using var a = Stats(clean);
        double previous = 0;
        foreach (var noise in new[] { 0.1, 0.5, 2.0 })
        {
            using var noisy = Features(400, 12, 3, noise);
            using var b = Stats(noisy);
            double ab = FrechetDistance.Compute(a, b).Value, ba = FrechetDistance.Compute(b, a).Value;
            Assert.Equal(ab, ba, Math.Max(1e-9, ab * 1e-9));
            Assert.True(ab > previous, $"noise {noise}: {ab} !> {previous}");
            previous = ab;
        }
    }

    [Fact]
    public void DiagonalGaussiansMatchTheClosedForm()
    {
        double[] mu1 = [0.5, -1, 2, 0], mu2 = [1, 1, -1, 0.25], s1 = [1, 4, 0.25, 2], s2 = [2, 1, 0.5, 2];
        double expected = 0;
        for (int i = 0; i < 4; i++)
            expected += Math.Pow(mu1[i] - mu2[i], 2) + s1[i] + s2[i] - 2 * Math.Sqrt(s1[i] * s2[i]);
        using var m1 = tensor(mu1); using var m2 = tensor(mu2);
        using var c1 = diag(tensor(s1)); using var c2 = diag(tensor(s2));
        Assert.Equal(expected, FrechetDistance.Compute(m1, c1, m2, c2).Value, 1e-12);
    }

    [Fact]
    public void FullCovariancesMatchPytorchFidsScipySqrtm()
    {
        foreach (var c in MetricFixtureData.Expected.GetProperty("frechet").EnumerateArray())
        {
            Tensor Vec(string k) => tensor(c.GetProperty(k).EnumerateArray().Select(x => x.GetDouble()).ToArray());
            Tensor Mat(string k)
            {
                var rows = c.GetProperty(k).EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToArray();
                return tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows.Length]);
            }
            using var m1 = Vec("mu1"); using var m2 = Vec("mu2"); using var s1 = Mat("sigma1"); using var s2 = Mat("sigma2");
            double expected = c.GetProperty("distance").GetDouble();
            var r = FrechetDistance.Compute(m1, s1, m2, s2);
            Assert.Equal(expected, r.Value, expected * 1e-9);
            Assert.True(r.SqrtResidual < 1e-12, $"residual {r.SqrtResidual}");
        }
    }

    [Fact]
    public void StreamingStatisticsEqualBatchStatistics()
    {
        using var f = Features(123, 10, 4);
        using var s = Stats(f, chunk: 11);
        var (mean, cov) = s.MeanAndCovariance();
        using (mean) using (cov)
        {
            using var refMean = f.mean([0]);
            using var centred = f - refMean;
            using var refCov = centred.t().matmul(centred) / (f.shape[0] - 1);
            Assert.True(mean.allclose(refMean, rtol: 0, atol: 1e-12));
            Assert.True(cov.allclose(refCov, rtol: 0, atol: 1e-10));
            Assert.Equal(123, s.Count);
        }
    }

    [Fact]
    public void MergedHalvesEqualTheWhole()
    {
        using var f = Features(200, 8, 5);
        using var whole = Stats(f);
        using var first = Stats(f[TensorIndex.Slice(0, 77)]);
        using var second = Stats(f[TensorIndex.Slice(77, 200)]);
        // The second half travels as plain arrays, as it would between eval workers.
        var (count, sum, outer) = second.Export();
        using var shipped = FeatureStatistics.Import(8, count, sum, outer);
        first.Merge(shipped);
        Assert.Equal(whole.Count, first.Count);
        var (m1, c1) = whole.MeanAndCovariance();
        var (m2, c2) = first.MeanAndCovariance();
        using (m1) using (c1) using (m2) using (c2)
        {
            Assert.True(m1.allclose(m2, rtol: 0, atol: 1e-12));
            Assert.True(c1.allclose(c2, rtol: 0, atol: 1e-10));
        }
    }

    [Fact]
    public void WrongFeatureWidthIsRefused()
    {
        using var s = new FeatureStatistics(2048);
        using var f = zeros(4, 100);
        var e = Assert.Throws<ArgumentException>(() => s.Add(f));
        Assert.Contains("2048", e.Message);
    }
}
