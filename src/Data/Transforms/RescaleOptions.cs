namespace LiteVae.Data.Transforms;

/// <summary>How the training transform picks the resized short side S' before its random crop.</summary>
public enum RescaleDistribution
{
    /// <summary>S' = R: the whole short side fits the crop (the evaluation view, randomly placed).</summary>
    Fixed,
    /// <summary>S' uniform in [R, S'max] pixels.</summary>
    Uniform,
    /// <summary>log S' uniform in [log R, log S'max]: every octave of zoom is equally likely (default).</summary>
    LogUniform,
}

/// <summary>
/// Stochastic rescaling for training. The upright image (short side S) is resized, keeping its aspect
/// ratio, so its short side becomes S' drawn from <see cref="Distribution"/> over
/// [R, S'max] with S'max = min(S, MaxRatio × R); then an R × R crop is taken at a uniformly random
/// position, and mirrored left–right with probability 1/2 when <see cref="Flip"/>. Images never get
/// enlarged beyond their native resolution, except those whose short side is below R (resized to R).
/// </summary>
public sealed record RescaleOptions
{
    public RescaleDistribution Distribution { get; init; } = RescaleDistribution.LogUniform;

    /// <summary>Largest resized short side as a multiple of R: 4 means a crop spans at least 1/4 of the
    /// short side, so huge photos do not give only featureless close-ups.</summary>
    public double MaxRatio { get; init; } = 4.0;

    public bool Flip { get; init; } = true;

    public void Validate()
    {
        if (!(MaxRatio >= 1.0) || double.IsInfinity(MaxRatio))
            throw new ArgumentException($"rescale.max-ratio = {MaxRatio} must be a finite number >= 1.");
    }

    public static RescaleDistribution ParseDistribution(string name) => name switch
    {
        "fixed" => RescaleDistribution.Fixed,
        "uniform" => RescaleDistribution.Uniform,
        "log-uniform" => RescaleDistribution.LogUniform,
        _ => throw new ArgumentException($"rescale.distribution = '{name}' is not one of: fixed, uniform, log-uniform."),
    };
}
