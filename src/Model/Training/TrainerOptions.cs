namespace LiteVae.Model.Training;

/// <summary>How the discriminator is kept out of the generator step.</summary>
public enum DiscriminatorFreeze
{
    /// <summary>requires_grad off on D's parameters during the G step: backward computes no D weight
    /// gradients at all (Lightning 1.x's behaviour; the cheaper one).</summary>
    RequiresGrad,
    /// <summary>D's parameters keep requires_grad; their gradients from the G step are zeroed before
    /// the D step (the reference's own no-op "freeze").</summary>
    ZeroGrad,
}

/// <summary>Numerics of a training run (bound from the config's trainer section by the host).</summary>
public sealed record TrainerOptions
{
    public Precision Precision { get; init; } = Precision.Fp32;
    /// <summary>Channels-last activations and weights (what cuDNN prefers on tensor-core GPUs).</summary>
    public bool ChannelsLast { get; init; }
    /// <summary>
    /// With <see cref="ChannelsLast"/>: lay the encoder out channels-last too. Off by default: on an H100
    /// the wavelet encoder's small convolutions run faster in NCHW while the decoder, discriminator and
    /// LPIPS gain from channels-last (bench/results/train-step-*.md).
    /// </summary>
    public bool EncoderChannelsLast { get; init; }

    /// <summary>Whether the autoencoder parameter <paramref name="name"/> gets channels-last strides.</summary>
    public bool ChannelsLastFor(string name) =>
        ChannelsLast && (EncoderChannelsLast || !name.StartsWith("encoder.", StringComparison.Ordinal));

    /// <summary>Whether the input images enter the encoder channels-last.</summary>
    public bool InputChannelsLast => ChannelsLast && EncoderChannelsLast;
    /// <summary>Adam for the autoencoder (lr 1e-4, betas 0.5/0.9, spec 9.2).</summary>
    public AdamOptions Adam { get; init; } = new();
    /// <summary>Discriminator lr = Adam.Lr × this (reference disc_lr_ratio).</summary>
    public double DiscLrRatio { get; init; } = 1.0;
    /// <summary>Gradient accumulation: each batch is split into this many micro-batches.</summary>
    public int MicroBatches { get; init; } = 1;
    /// <summary>Global-norm gradient clipping (per model), or null for none.</summary>
    public double? ClipGradNorm { get; init; }
    public bool Ema { get; init; }
    public double EmaDecay { get; init; } = 0.9999;
    /// <summary>The run fails after this many consecutive steps with NaN/Inf gradients.</summary>
    public int MaxConsecutiveBadSteps { get; init; } = 20;
    public long Seed { get; init; }
    public DiscriminatorFreeze DiscriminatorFreeze { get; init; } = DiscriminatorFreeze.RequiresGrad;
    /// <summary>fp16 only: the initial dynamic loss scale.</summary>
    public double InitialLossScale { get; init; } = 65536.0;

    public IEnumerable<(string Key, string Problem)> Problems()
    {
        if (MicroBatches < 1) yield return ("micro-batches", $"is {MicroBatches}; must be >= 1");
        if (ClipGradNorm is double c && !(c > 0)) yield return ("clip-grad-norm", $"is {c}; must be > 0 (or leave it out for no clipping)");
        if (EmaDecay is < 0 or > 1) yield return ("ema-decay", $"is {EmaDecay}; must be in [0, 1]");
        if (MaxConsecutiveBadSteps < 1) yield return ("max-consecutive-bad-steps", $"is {MaxConsecutiveBadSteps}; must be >= 1");
        if (!(DiscLrRatio > 0)) yield return ("disc-lr-ratio", $"is {DiscLrRatio}; must be > 0");
        if (!(InitialLossScale >= 1)) yield return ("initial-loss-scale", $"is {InitialLossScale}; must be >= 1");
        string? adam = null;
        try { Adam.Validate(); } catch (ArgumentException e) { adam = e.Message; }
        if (adam is not null) yield return ("adam", adam);
    }
}
