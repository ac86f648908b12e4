using LiteVae.Data.Config;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;

using LiteVae.Actors;

namespace LiteVae.Host.Config;

/// <summary>
/// Binds an experiment config (configs/*.conf). Our sections use kebab-case keys (experiment, trainer,
/// loss, checkpoint, eval); model { } and discriminator { } keep the reference's snake_case names and
/// are bound by <see cref="ModelConfigBinder"/> and <see cref="DiscriminatorConfigBinder"/>;
/// data { } and eval-data { } by <see cref="DataConfigBinder"/>. Unknown keys are errors; every error
/// names the file and the key.
/// </summary>
public static class ExperimentConfigBinder
{
    private static readonly string[] TopLevel = ["experiment", "model", "discriminator", "data", "eval-data", "trainer", "loss", "checkpoint", "eval"];
    private static readonly string[] ExperimentKeys = ["name"];
    private static readonly string[] TrainerKeys =
    [
        "max-steps", "log-every", "device", "init-from", "cpu-threads", "precision", "channels-last", "channels-last-encoder", "micro-batches", "seed",
        "lr", "beta1", "beta2", "eps", "disc-lr-ratio", "clip-grad-norm", "ema", "ema-decay",
        "max-consecutive-bad-steps", "d-freeze", "initial-loss-scale",
    ];
    private static readonly string[] LossKeys =
    [
        "l1-weight", "perceptual", "perceptual-weight", "wavelet-weight", "charbonnier-eps", "gaussian-weight",
        "gaussian-kernel", "gaussian-sigma", "kl-weight", "kl-reduction", "gan-loss", "adversarial-weight",
        "adversarial-weighting", "adaptive-weight-max", "disc-start", "disc-factor",
    ];
    private static readonly string[] CheckpointKeys = ["every-steps", "keep-last", "keep-best"];
    private static readonly string[] EvalKeys = ["images", "grid-images", "use-ema", "lpips", "rfid"];

    public static ExperimentConfig Load(string path, IEnumerable<string>? overrides = null) => Bind(HoconFile.Load(path, overrides));

    /// <summary>An experiment's text (as the Coordinator hands it out, or a checkpoint's config.conf); <paramref name="source"/> names it in errors.</summary>
    public static ExperimentConfig Bind(string hocon, string source) => Bind(HoconFile.Parse(hocon, source));

    public static ExperimentConfig Bind(HoconFile file)
    {
        file.RejectUnknown(TopLevel);
        var exp = Section(file, "experiment", ExperimentKeys);
        string name = exp.String("name");

        var model = ModelConfigBinder.Bind(file);
        var disc = file.Has("discriminator") ? DiscriminatorConfigBinder.Bind(file) : new NullDiscriminatorConfig();
        var data = DataConfigBinder.Bind(file, "data");
        var evalData = file.Has("eval-data") ? DataConfigBinder.Bind(file, "eval-data") : null;

        CheckResolution(file.Source, "data", data.Resolution, model, disc);
        if (evalData is not null) CheckResolution(file.Source, "eval-data", evalData.Resolution, model, null);

        var t = Section(file, "trainer", TrainerKeys);
        var run = new RunSettings(
            t.Long("max-steps", min: 1),
            t.Int("log-every", 50, min: 1),
            t.String("device", "auto"),
            NullIfEmpty(t.String("init-from", "")),
            t.Int("cpu-threads", 0, min: 0, max: 1024));
        if (run.Device is not ("auto" or "cpu" or "cuda") && !run.Device.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ConfigException($"{t.Source}: key 'device' = '{run.Device}' is not one of auto, cpu, cuda, cuda:N.");
        double clip = t.Double("clip-grad-norm", 0, min: 0);
        var trainer = new TrainerOptions
        {
            Precision = PrecisionNames.Parse(t.Choice("precision", ["fp32", "bf16", "fp16"], "fp32")),
            ChannelsLast = t.Bool("channels-last", false),
            EncoderChannelsLast = t.Bool("channels-last-encoder", false),
            MicroBatches = t.Int("micro-batches", 1, min: 1),
            Seed = t.Long("seed", 0),
            Adam = new AdamOptions(t.Double("lr", 1e-4, min: 1e-12, max: 1), t.Double("beta1", 0.5, min: 0, max: 0.999999),
                t.Double("beta2", 0.9, min: 0, max: 0.999999999), t.Double("eps", 1e-8, min: 1e-20, max: 1)),
            DiscLrRatio = t.Double("disc-lr-ratio", 1.0, min: 1e-6, max: 1e6),
            ClipGradNorm = clip > 0 ? clip : null,
            Ema = t.Bool("ema", false),
            EmaDecay = t.Double("ema-decay", 0.9999, min: 0, max: 1),
            MaxConsecutiveBadSteps = t.Int("max-consecutive-bad-steps", 20, min: 1),
            DiscriminatorFreeze = t.Choice("d-freeze", ["requires-grad", "zero-grad"], "requires-grad") == "zero-grad"
                ? DiscriminatorFreeze.ZeroGrad : DiscriminatorFreeze.RequiresGrad,
            InitialLossScale = t.Double("initial-loss-scale", 65536, min: 1, max: 1e9),
        };
        if (data.BatchSize % trainer.MicroBatches != 0)
            throw new ConfigException($"{t.Source}: key 'micro-batches' = {trainer.MicroBatches} must divide data.batch-size = {data.BatchSize}.");

        var l = Section(file, "loss", LossKeys);
        var perceptual = l.Choice("perceptual", ["vgg", "alex", "none"], "vgg") switch
        {
            "alex" => PerceptualNet.Alex,
            "none" => PerceptualNet.None,
            _ => PerceptualNet.Vgg,
        };
        var loss = new LossConfig
        {
            L1Weight = l.Double("l1-weight", 1.0, min: 0),
            PerceptualWeight = perceptual == PerceptualNet.None ? 0 : l.Double("perceptual-weight", 1.0, min: 0),
            WaveletWeight = l.Double("wavelet-weight", 1.0, min: 0),
            CharbonnierEps = l.Double("charbonnier-eps", 1e-3, min: 1e-12),
            GaussianWeight = l.Double("gaussian-weight", 0.5, min: 0),
            GaussianKernel = l.Int("gaussian-kernel", 5, min: 3, max: 31),
            GaussianSigma = l.Double("gaussian-sigma", 1.0, min: 1e-3, max: 100),
            KlWeight = l.Double("kl-weight", 0.01, min: 0),
            KlReduction = l.Choice("kl-reduction", ["element-mean", "sample-sum"], "element-mean") == "sample-sum"
                ? KlReduction.SampleSum : KlReduction.ElementMean,
            GanLoss = l.Choice("gan-loss", ["hinge", "logistic", "nsat"], "hinge"),
            AdversarialWeight = l.Double("adversarial-weight", 0.1, min: 0),
            Weighting = l.Choice("adversarial-weighting", ["constant", "adaptive"], "constant") == "adaptive"
                ? AdversarialWeighting.Adaptive : AdversarialWeighting.Constant,
            AdaptiveWeightMax = l.Double("adaptive-weight-max", 1e4, min: 1e-6),
            DiscStart = l.Long("disc-start", 0, min: 0),
            DiscFactor = l.Double("disc-factor", 1.0, min: 0),
        };
        if (loss.GaussianKernel % 2 == 0)
            throw new ConfigException($"{l.Source}: key 'gaussian-kernel' = {loss.GaussianKernel} must be odd.");
        foreach (var (key, problem) in loss.Problems())
            throw new ConfigException($"{l.Source}: key '{key}' {problem}.");

        var c = Section(file, "checkpoint", CheckpointKeys);
        var checkpoint = new CheckpointSettings(c.Long("every-steps", Math.Max(1, run.MaxSteps / 20), min: 1),
            c.Int("keep-last", 3, min: 1), c.Bool("keep-best", true));
        var e = Section(file, "eval", EvalKeys);
        var eval = new EvalSettings(e.Int("images", 16, min: 0, max: 100_000), e.Int("grid-images", 8, min: 0, max: 64), e.Bool("use-ema", false),
            e.Choice("lpips", ["vgg", "alex", "none"], "vgg"), e.Bool("rfid", false));
        if (eval.UseEma && !trainer.Ema)
            throw new ConfigException($"{e.Source}: key 'use-ema' = true needs trainer.ema = true.");
        if (eval.Images > 0 && evalData is null)
            throw new ConfigException($"{file.Source}: eval.images = {eval.Images} needs an eval-data {{ }} section with held-out shards (or set eval.images = 0).");

        return new ExperimentConfig(name, model, disc, data, evalData, run, trainer, loss, perceptual, checkpoint, eval, HoconText.Render(file.Raw));
    }

    /// <summary>Crops must fit the networks: the encoder's downsampling (2^dct_levels) and, while training, UNetGAN's
    /// six halvings. Caught here so a run refuses to start instead of failing at its first step on every trainer.</summary>
    private static void CheckResolution(string source, string section, int resolution, AutoencoderConfig model, DiscriminatorConfig? disc)
    {
        int factor = model.Encoder.Downsampling;
        if (resolution % factor != 0)
            throw new ConfigException($"{source}: key '{section}.resolution' = {resolution} must be a multiple of {factor} (the encoder downsamples by {factor}).");
        if (disc is UNetGanConfig && resolution % UNetGanDiscriminator.SizeMultiple != 0)
            throw new ConfigException($"{source}: key '{section}.resolution' = {resolution} must be a multiple of {UNetGanDiscriminator.SizeMultiple} " +
                "for the unetgan discriminator (six 2x downsamplings); use 64, 128, 256… or another discriminator.");
    }

    /// <summary>A section that may be absent (all defaults); unknown keys in it are errors.</summary>
    private static HoconFile Section(HoconFile file, string name, string[] known)
    {
        if (!file.Has(name))
            return HoconFile.Parse("", file.Source + "#" + name);
        var section = file.Section(name);
        section.RejectUnknown(known, name + ".");
        return section;
    }

    private static string? NullIfEmpty(string s) => string.IsNullOrWhiteSpace(s) ? null : s;
}
