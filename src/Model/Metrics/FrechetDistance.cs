using static TorchSharp.torch;

namespace LiteVae.Model.Metrics;

/// <summary>A Fréchet distance and how much to trust it.</summary>
/// <param name="Value">‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2).</param>
/// <param name="SqrtResidual">‖R² − M‖_F / ‖M‖_F for the matrix square root R of M = √Σ1 Σ2 √Σ1
/// (0 when M is 0); a value far above 1e-6 means the covariances were ill-conditioned.</param>
public sealed record FrechetResult(double Value, double SqrtResidual, double MeanTerm, double TraceTerm);

/// <summary>
/// The Fréchet distance between two Gaussians, computed in float64 through symmetric matrices only:
/// tr √(Σ1 Σ2) = tr √(√Σ1 Σ2 √Σ1), where both square roots come from <c>eigh</c> of a symmetric
/// positive semi-definite matrix (eigenvalues below the numerical noise floor are set to 0). This
/// avoids the general (non-symmetric) <c>sqrtm</c> of pytorch-fid, which can turn complex on
/// rank-deficient covariances; mathematically the two are equal.
/// </summary>
public static class FrechetDistance
{
    public static FrechetResult Compute(Tensor mean1, Tensor cov1, Tensor mean2, Tensor cov2)
    {
        if (mean1.ndim != 1 || !mean1.shape.SequenceEqual(mean2.shape)
            || !cov1.shape.SequenceEqual(new[] { mean1.shape[0], mean1.shape[0] }) || !cov1.shape.SequenceEqual(cov2.shape))
            throw new ArgumentException("Fréchet distance needs two means [D] and two covariances [D, D].");
        using var scope = NewDisposeScope();
        var m1 = mean1.to(float64); var m2 = mean2.to(cov1.device).to(float64);
        var s1 = Symmetric(cov1.to(float64)); var s2 = Symmetric(cov2.to(cov1.device).to(float64));

        var root1 = SqrtPsd(s1);
        var m = Symmetric(root1.matmul(s2).matmul(root1));
        var (values, vectors) = linalg.eigh(m);
        var clean = ClampNoise(values);
        var sqrtM = vectors.matmul(diag(clean.sqrt())).matmul(vectors.t());
        double mNorm = linalg.norm(m).item<double>();
        double residual = mNorm == 0 ? 0 : linalg.norm(sqrtM.matmul(sqrtM) - m).item<double>() / mNorm;

        double meanTerm = (m1 - m2).square().sum().item<double>();
        double traceTerm = (s1.trace() + s2.trace() - 2 * clean.sqrt().sum()).item<double>();
        return new FrechetResult(meanTerm + traceTerm, residual, meanTerm, traceTerm);
    }

    /// <summary>FID between two feature accumulators.</summary>
    public static FrechetResult Compute(FeatureStatistics a, FeatureStatistics b)
    {
        var (m1, c1) = a.MeanAndCovariance();
        var (m2, c2) = b.MeanAndCovariance();
        using (m1) using (c1) using (m2) using (c2)
            return Compute(m1, c1, m2, c2);
    }

    private static Tensor Symmetric(Tensor x) => (x + x.t()) / 2;

    /// <summary>Square root of a symmetric PSD matrix by eigendecomposition.</summary>
    private static Tensor SqrtPsd(Tensor s)
    {
        var (values, vectors) = linalg.eigh(s);
        return vectors.matmul(diag(ClampNoise(values).sqrt())).matmul(vectors.t());
    }

    /// <summary>
    /// Eigenvalues of a PSD matrix computed in float64 are exact only to about D·ε·λmax; anything
    /// below that (including small negatives) is rounding noise and is set to 0, so a rank-deficient
    /// covariance (fewer images than dimensions) adds nothing spurious to the trace.
    /// </summary>
    private static Tensor ClampNoise(Tensor values)
    {
        double max = values.abs().max().item<double>();
        double floor = values.shape[0] * 2.220446049250313e-16 * max;
        return where(values > floor, values, zeros_like(values));
    }
}
