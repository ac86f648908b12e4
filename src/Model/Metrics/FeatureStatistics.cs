using static TorchSharp.torch;

namespace LiteVae.Model.Metrics;

/// <summary>
/// Streaming first and second moments of feature vectors (e.g. 2048-d Inception pool3 features) for
/// FID: a count, the running sum and the running sum of outer products, all float64, so memory stays
/// constant however many images pass (2048² doubles = 32 MiB) and two workers' statistics merge by
/// addition. The sums live on the device of the first batch. Not thread-safe; one owner at a time.
/// </summary>
public sealed class FeatureStatistics : IDisposable
{
    private Tensor? _sum;
    private Tensor? _outer;

    public FeatureStatistics(int dim)
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), "feature dimension must be positive.");
        Dim = dim;
    }

    public int Dim { get; }

    public long Count { get; private set; }

    /// <summary>Adds an N x D batch of features (any float dtype, any device).</summary>
    public void Add(Tensor features)
    {
        if (features.ndim != 2 || features.shape[1] != Dim)
            throw new ArgumentException($"expected N x {Dim} features, got [{string.Join(", ", features.shape)}].");
        if (features.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var f = features.detach().to(float64);
        if (_sum is null)
        {
            _sum = zeros(Dim, float64, f.device).DetachFromDisposeScope();
            _outer = zeros([Dim, Dim], float64, f.device).DetachFromDisposeScope();
        }
        _sum.add_(f.sum([0]));  // not sum(0): a literal 0 converts to ScalarType.Byte
        _outer!.add_(f.t().matmul(f));
        Count += features.shape[0];
    }

    /// <summary>Adds another accumulator's totals (the other is left unchanged).</summary>
    public void Merge(FeatureStatistics other)
    {
        if (other.Dim != Dim) throw new ArgumentException($"cannot merge {other.Dim}-d statistics into {Dim}-d ones.");
        if (other.Count == 0) return;
        if (_sum is null)
        {
            _sum = other._sum!.clone().DetachFromDisposeScope();
            _outer = other._outer!.clone().DetachFromDisposeScope();
        }
        else
        {
            _sum.add_(other._sum!.to(_sum.device));
            _outer!.add_(other._outer!.to(_outer.device));
        }
        Count += other.Count;
    }

    /// <summary>The totals as CPU float64 arrays (count, sum [D], sum of outer products [D·D]), to ship between workers.</summary>
    public (long Count, double[] Sum, double[] Outer) Export()
    {
        if (_sum is null) return (0, new double[Dim], new double[Dim * Dim]);
        using var s = _sum.cpu();
        using var o = _outer!.cpu();
        return (Count, s.data<double>().ToArray(), o.reshape(-1).data<double>().ToArray());
    }

    /// <summary>Rebuilds statistics from <see cref="Export"/>ed totals.</summary>
    public static FeatureStatistics Import(int dim, long count, double[] sum, double[] outer)
    {
        if (sum.Length != dim || outer.Length != (long)dim * dim || count < 0)
            throw new ArgumentException($"exported statistics do not describe {dim}-d features.");
        var stats = new FeatureStatistics(dim) { Count = count };
        if (count > 0)
        {
            stats._sum = tensor(sum, float64).DetachFromDisposeScope();
            stats._outer = tensor(outer, float64).reshape(dim, dim).DetachFromDisposeScope();
        }
        return stats;
    }

    /// <summary>Mean [D] and unbiased covariance [D, D] (divisor N − 1, as numpy.cov), float64 on the statistics' device.</summary>
    public (Tensor Mean, Tensor Covariance) MeanAndCovariance()
    {
        if (Count < 2) throw new InvalidOperationException($"a covariance needs at least 2 feature vectors, have {Count}.");
        using var scope = NewDisposeScope();
        var mean = _sum! / Count;
        var cov = (_outer! - Count * outer(mean, mean)) / (Count - 1);
        cov = (cov + cov.t()) / 2; // exact symmetry for eigh
        return (scope.MoveToOuter(mean), scope.MoveToOuter(cov));
    }

    public void Dispose()
    {
        _sum?.Dispose();
        _outer?.Dispose();
        _sum = _outer = null;
    }
}
