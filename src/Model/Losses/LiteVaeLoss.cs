using LiteVae.Model.Discriminators;
using LiteVae.Model.Distributions;
using LiteVae.Model.Perceptual;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Losses;

/// <summary>The generator loss and its terms as detached device scalars (read once per log window).</summary>
public sealed record GeneratorLoss(Tensor Total, IReadOnlyDictionary<string, Tensor> Terms);

/// <summary>
/// The LiteVAE training loss (spec 8, 13): L1 + LPIPS + wavelet (Charbonnier on level-1 Haar detail
/// bands) + Gaussian high-pass + KL, plus the adversarial term once the discriminator has started.
/// Every reconstruction term is a per-element mean; the high-frequency terms and L1 run in fp32
/// whatever the model's dtype. LPIPS is frozen and owned by the caller (null = the term is off; the
/// trainer reports that once). The discriminator's own loss calls it separately on real and fake
/// images, so BatchNorm sees fresh batches (spec 7.1).
/// </summary>
public sealed class LiteVaeLoss : IDisposable
{
    private readonly HighFrequencyLosses _highFrequency;
    private readonly Lpips? _lpips;
    private readonly GanLossKind _ganKind;

    public LiteVaeLoss(LossConfig config, Lpips? lpips, Device device)
    {
        config.EnsureValid();
        Config = config;
        _lpips = config.PerceptualWeight > 0 ? lpips : null;
        if (!GanLosses.TryParse(config.GanLoss, out _ganKind))
            throw new ArgumentException($"unknown GAN loss '{config.GanLoss}'.");
        _highFrequency = new HighFrequencyLosses(3, config.CharbonnierEps, config.GaussianKernel, config.GaussianSigma, device);
    }

    public LossConfig Config { get; }

    /// <summary>False when LPIPS weights were not available (or its weight is 0): the term is skipped.</summary>
    public bool PerceptualEnabled => _lpips is not null;

    /// <summary>Whether the adversarial term and the discriminator step are on at <paramref name="step"/>.</summary>
    public bool AdversarialActive(long step, IDiscriminator? discriminator) =>
        discriminator is not null && discriminator.Type != "none" && step >= Config.DiscStart
        && (Config.AdversarialWeight > 0 || Config.DiscFactor > 0);

    /// <summary>
    /// The generator (autoencoder) loss for one micro-batch.
    /// </summary>
    /// <param name="target">Original images in fp32, [-1, 1].</param>
    /// <param name="targetCompute">The same images in the compute dtype (LPIPS input).</param>
    /// <param name="reconstruction">The decoder output (compute dtype, part of the graph).</param>
    /// <param name="discriminator">Null when the adversarial term is off at this step.</param>
    /// <param name="lastLayer">The decoder's last weight, needed only for the adaptive weight.</param>
    /// <param name="profiler">Profiling runs only: marks the pixel losses, LPIPS and the D forward.</param>
    public GeneratorLoss Generator(Tensor target, Tensor targetCompute, Tensor reconstruction, DiagonalGaussian posterior,
        IDiscriminator? discriminator, Parameter? lastLayer, Training.StepProfiler? profiler = null)
    {
        var c = Config;
        using var scope = NewDisposeScope();
        var terms = new Dictionary<string, Tensor>();
        var rec32 = Wide(reconstruction);

        var l1 = (rec32 - target).abs().mean();
        var nll = c.L1Weight * l1;
        terms["l1"] = l1;
        if (_lpips is not null)
        {
            var p = Wide(_lpips.call(reconstruction, targetCompute)).mean();
            nll = nll + c.PerceptualWeight * p;
            terms["lpips"] = p;
            profiler?.Mark("lpips_forward");
        }
        var total = nll;
        if (c.WaveletWeight > 0)
        {
            var w = _highFrequency.Wavelet(reconstruction, target);
            total = total + c.WaveletWeight * w;
            terms["wavelet"] = w;
        }
        if (c.GaussianWeight > 0)
        {
            var g = _highFrequency.Gaussian(reconstruction, target);
            total = total + c.GaussianWeight * g;
            terms["gaussian"] = g;
        }
        var kl = Kl(posterior);
        total = total + c.KlWeight * kl;
        terms["kl"] = kl;
        profiler?.Mark("pixel_losses");

        if (discriminator is not null && c.AdversarialWeight > 0)
        {
            var logits = discriminator.Logits(reconstruction);
            var adv = Wide(GanLosses.Generator(_ganKind, logits));
            if (c.Weighting == AdversarialWeighting.Adaptive)
            {
                var weight = AdaptiveWeight(nll, adv, lastLayer ?? throw new ArgumentException("the adaptive adversarial weight needs the decoder's last layer."));
                total = total + weight * adv;
                terms["adv_weight"] = weight;
            }
            else
                total = total + c.AdversarialWeight * adv;
            terms["g_adv"] = adv;
            profiler?.Mark("d_forward_for_g");
        }
        terms["total"] = total;
        var detached = terms.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to_type(ScalarType.Float32));
        scope.MoveToOuter(detached.Values);
        return new GeneratorLoss(scope.MoveToOuter(total), detached);
    }

    /// <summary>KL(q || N(0, I)) reduced as configured (spec 8.3).</summary>
    public Tensor Kl(DiagonalGaussian posterior)
    {
        // Computed here in fp32 (the posterior may be bf16): 0.5 (mean^2 + var - 1 - logvar) per element.
        using var scope = NewDisposeScope();
        var mean = Wide(posterior.Mean);
        var logVar = Wide(posterior.LogVar);
        var terms = 0.5 * (mean.square() + logVar.exp() - 1.0 - logVar);
        var kl = Config.KlReduction == KlReduction.ElementMean ? terms.mean() : terms.sum([1, 2, 3]).mean();
        return scope.MoveToOuter(kl);
    }

    /// <summary>
    /// taming's adaptive weight: ||∂nll/∂w_last|| / (||∂adv/∂w_last|| + 1e-4), clamped to
    /// [0, max], times lambda_adv, detached. Gradients come from autograd.grad, which does not touch
    /// the parameters' .grad buffers.
    /// </summary>
    public Tensor AdaptiveWeight(Tensor nll, Tensor adv, Parameter lastLayer)
    {
        using var scope = NewDisposeScope();
        var gNll = autograd.grad([nll], [lastLayer], retain_graph: true)[0];
        var gAdv = autograd.grad([adv], [lastLayer], retain_graph: true)[0];
        var ratio = Wide(gNll).norm() / (Wide(gAdv).norm() + 1e-4);
        var w = ratio.clamp(0.0, Config.AdaptiveWeightMax).mul_(Config.AdversarialWeight).detach();
        return scope.MoveToOuter(w);
    }

    /// <summary>
    /// The discriminator loss for one micro-batch: separate calls on the real images and on the
    /// reconstruction the generator step produced (detached), scaled by disc_factor.
    /// </summary>
    public GeneratorLoss Discriminator(Tensor realCompute, Tensor fakeDetached, IDiscriminator discriminator)
    {
        using var scope = NewDisposeScope();
        var real = discriminator.Logits(realCompute.detach());
        var fake = discriminator.Logits(fakeDetached.detach());
        var d = Wide(GanLosses.Discriminator(_ganKind, real, fake));
        var total = Config.DiscFactor * d;
        var terms = new Dictionary<string, Tensor>
        {
            ["d_loss"] = d.detach(),
            ["logits_real"] = MeanLogit(real),
            ["logits_fake"] = MeanLogit(fake),
        };
        scope.MoveToOuter(terms.Values);
        return new GeneratorLoss(scope.MoveToOuter(total), terms);
    }

    /// <summary>Loss arithmetic runs in fp32 for bf16/fp16 models; fp64 stays fp64 (gradient checks).</summary>
    private static Tensor Wide(Tensor t) => t.dtype == ScalarType.Float64 ? t : t.to_type(ScalarType.Float32);

    private static Tensor MeanLogit(IReadOnlyList<Tensor> logits)
    {
        if (logits.Count == 0) return zeros([]);
        var sum = logits[0].detach().to_type(ScalarType.Float32).mean();
        for (int i = 1; i < logits.Count; i++)
            sum = sum + logits[i].detach().to_type(ScalarType.Float32).mean();
        return sum / logits.Count;
    }

    public void Dispose() => _highFrequency.Dispose();
}
