namespace LiteVae.Model.Losses;

/// <summary>How the KL term is reduced before its weight applies (spec 8.3: the reference's convention is unknown).</summary>
public enum KlReduction
{
    /// <summary>Mean over latent elements and the batch: the only reading under which w_kl = 0.01 next to
    /// per-element-mean L1 does not swamp reconstruction. The default.</summary>
    ElementMean,
    /// <summary>Sum over C, H, W per sample, then the batch mean (the paper's pseudocode, LDM style).</summary>
    SampleSum,
}

/// <summary>Constant adversarial weight (paper, Table 8) or taming's adaptive last-layer weight.</summary>
public enum AdversarialWeighting
{
    Constant,
    Adaptive,
}

/// <summary>
/// Weights and choices of the LiteVAE loss (spec 8, 13). Every reconstruction term is a per-element
/// mean; the defaults are the spec 13 recipe: L1 + LPIPS(VGG) + 1.0 wavelet + 0.5 Gaussian + 0.01 KL,
/// hinge GAN with a constant weight 0.1 from the discriminator's start step.
/// </summary>
public sealed record LossConfig
{
    public double L1Weight { get; init; } = 1.0;
    /// <summary>LPIPS weight; the term is off (and says so once) when no LPIPS weights are available.</summary>
    public double PerceptualWeight { get; init; } = 1.0;
    public double WaveletWeight { get; init; } = 1.0;
    public double GaussianWeight { get; init; } = 0.5;
    public double KlWeight { get; init; } = 0.01;
    public KlReduction KlReduction { get; init; } = KlReduction.ElementMean;
    public double CharbonnierEps { get; init; } = 1e-3;
    public int GaussianKernel { get; init; } = 5;
    public double GaussianSigma { get; init; } = 1.0;

    /// <summary>hinge, logistic or nsat (GanLosses names).</summary>
    public string GanLoss { get; init; } = "hinge";
    /// <summary>lambda_adv: the constant weight, or the factor on the adaptive weight.</summary>
    public double AdversarialWeight { get; init; } = 0.1;
    public AdversarialWeighting Weighting { get; init; } = AdversarialWeighting.Constant;
    /// <summary>Upper clamp of the adaptive weight (taming: 1e4).</summary>
    public double AdaptiveWeightMax { get; init; } = 1e4;
    /// <summary>First step (batch) at which the discriminator trains and the adversarial term applies.</summary>
    public long DiscStart { get; init; }
    /// <summary>Scale of the discriminator's own loss (taming's disc_factor).</summary>
    public double DiscFactor { get; init; } = 1.0;

    /// <summary>Problems keyed by config key (kebab-case, as in configs/*.conf).</summary>
    public IEnumerable<(string Key, string Problem)> Problems()
    {
        foreach (var (key, v) in new[] { ("l1-weight", L1Weight), ("perceptual-weight", PerceptualWeight), ("wavelet-weight", WaveletWeight),
                     ("gaussian-weight", GaussianWeight), ("kl-weight", KlWeight), ("adversarial-weight", AdversarialWeight), ("disc-factor", DiscFactor) })
            if (!(v >= 0) || double.IsInfinity(v)) yield return (key, $"is {v}; weights must be finite and >= 0");
        if (!(CharbonnierEps > 0)) yield return ("charbonnier-eps", $"is {CharbonnierEps}; must be > 0");
        if (GaussianKernel < 3 || GaussianKernel % 2 == 0) yield return ("gaussian-kernel", $"is {GaussianKernel}; must be odd and >= 3");
        if (!(GaussianSigma > 0)) yield return ("gaussian-sigma", $"is {GaussianSigma}; must be > 0");
        if (!(AdaptiveWeightMax > 0)) yield return ("adaptive-weight-max", $"is {AdaptiveWeightMax}; must be > 0");
        if (DiscStart < 0) yield return ("disc-start", $"is {DiscStart}; must be >= 0");
        if (GanLoss is not ("hinge" or "logistic" or "nsat")) yield return ("gan-loss", $"is '{GanLoss}'; use hinge, logistic or nsat");
    }

    public void EnsureValid()
    {
        var p = Problems().ToList();
        if (p.Count > 0)
            throw new ArgumentException("loss config: " + string.Join("; ", p.Select(x => $"{x.Key} {x.Problem}")));
    }
}
