using static TorchSharp.torch;

namespace LiteVae.Model.Distributions;

/// <summary>
/// The posterior q(z|x) = N(mean, exp(logvar)) of spec 6. Owns its mean and logvar tensors
/// (dispose it when done). logvar is clamped to [-30, 20] as in the reference.
/// </summary>
public sealed class DiagonalGaussian : IDisposable
{
    public const double LogVarMin = -30.0;
    public const double LogVarMax = 20.0;

    public Tensor Mean { get; }
    public Tensor LogVar { get; }

    private DiagonalGaussian(Tensor mean, Tensor logVar)
    {
        Mean = mean;
        LogVar = logVar;
    }

    /// <summary>Splits moments N x 2nz x h x w into mean (first nz channels) and clamped logvar (last nz).</summary>
    public static DiagonalGaussian FromMoments(Tensor moments)
    {
        if (moments.dim() != 4 || moments.shape[1] % 2 != 0)
            throw new ArgumentException($"moments must be N x 2nz x h x w, got [{string.Join(", ", moments.shape)}].");
        long nz = moments.shape[1] / 2;
        using var scope = NewDisposeScope();
        var mean = moments.narrow(1, 0, nz).contiguous();
        var logVar = moments.narrow(1, nz, nz).clamp(LogVarMin, LogVarMax);
        scope.MoveToOuter(mean, logVar);
        return new DiagonalGaussian(mean, logVar);
    }

    /// <summary>Takes ownership of existing mean and logvar tensors (logvar is clamped into a new tensor).</summary>
    public static DiagonalGaussian FromMeanLogVar(Tensor mean, Tensor logVar)
    {
        if (!mean.shape.SequenceEqual(logVar.shape))
            throw new ArgumentException($"mean [{string.Join(", ", mean.shape)}] and logvar [{string.Join(", ", logVar.shape)}] must have the same shape.");
        using var scope = NewDisposeScope();
        var clamped = logVar.clamp(LogVarMin, LogVarMax);
        scope.MoveToOuter(clamped);
        return new DiagonalGaussian(mean.alias(), clamped);
    }

    /// <summary>mean + exp(logvar / 2) * eps, eps ~ N(0, I) drawn on the tensors' own device.</summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var noise = generator is null
            ? Mean.randn_like()
            : randn(Mean.shape, Mean.dtype, Mean.device, generator: generator);
        var z = Mean + (0.5 * LogVar).exp_() * noise;
        return scope.MoveToOuter(z);
    }

    /// <summary>The mode (= mean), as a fresh handle the caller may dispose.</summary>
    public Tensor Mode() => Mean.alias();

    /// <summary>KL(q || N(0, I)) per sample: 0.5 * sum over C, H, W of (mean^2 + var - 1 - logvar). Shape [N].</summary>
    public Tensor Kl()
    {
        using var scope = NewDisposeScope();
        var kl = KlTerms().sum([1, 2, 3]);
        return scope.MoveToOuter(kl);
    }

    /// <summary>The same per-sample KL divided by C*H*W (a per-element mean). Shape [N].</summary>
    public Tensor KlPerElementMean()
    {
        using var scope = NewDisposeScope();
        var kl = KlTerms().mean([1, 2, 3]);
        return scope.MoveToOuter(kl);
    }

    private Tensor KlTerms() => 0.5 * (Mean.square() + LogVar.exp() - 1.0 - LogVar);

    public void Dispose()
    {
        Mean.Dispose();
        LogVar.Dispose();
    }
}
