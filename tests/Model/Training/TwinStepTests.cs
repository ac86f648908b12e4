using System.Globalization;
using System.Text.Json;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Tests.Distributed;
using LiteVae.Model.Tests.Parity;
using LiteVae.Model.Tests.Perceptual;
using LiteVae.Model.Tests.Support;
using LiteVae.Model.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

/// <summary>
/// The training-step twin: one fp32 step of <see cref="LiteVaeTrainer"/> (tiny LiteVAE, PatchGAN, VGG-LPIPS,
/// every loss term on, the discriminator active from step 0) against the same step computed in float64 by
/// an independent PyTorch implementation (tests/fixtures/tools/make_twin_fixture.py). Same initial weights,
/// same uint8 batch, same posterior noise (the trainer draws it from <see cref="StepRandom"/>; the fixture
/// drew it with the same seed derivation, and the test checks the two draws agree).
/// </summary>
// Alone, like the trainer tests: building modules draws from libtorch's process-wide RNG.
[Collection(DistributedCollection.Name)]
public sealed class TwinStepTests(ITestOutputHelper output)
{
    /// <summary>max |ours − expected| / max |expected| per weight tensor after the step.</summary>
    private const double WeightTolerance = 1e-4;
    /// <summary>|ours − expected| / |expected| per logged loss term.</summary>
    private const double TermTolerance = 1e-5;
    /// <summary>
    /// The step itself, in units of lr: max |ours − expected| / lr over the elements whose gradient is at least
    /// <see cref="StepGradientFloor"/>. One Adam step moves a weight by about lr, far below
    /// <see cref="WeightTolerance"/> of the weight, so this is what sees an update of the wrong size (a wrong lr,
    /// bias correction or eps). fp32 rounding of the new weight alone is up to 1.2e-3 lr for |w| &lt; 2.
    /// </summary>
    private const double StepTolerance = 5e-3;
    /// <summary>
    /// Elements with smaller gradients are left to the weight check: near Adam's eps (1e-8) the step
    /// lr g / (|g| + eps) follows fp32 round-off of g (up to ~1e-8 absolute here), not the arithmetic under test.
    /// </summary>
    private const double StepGradientFloor = 1e-5;
    /// <summary>Per gradient tensor (read back from Adam's first moment), relative to its own max |value|.</summary>
    private const double GradientTolerance = 1e-4;

    /// <summary>
    /// Parameters whose exact gradient is zero (a conv bias in front of a GroupNorm with one channel per
    /// group: the normalisation removes it). The fixture's float64 gradient is ~1e-18 of the model's largest,
    /// fp32 gives round-off of ~1e-9, and Adam (eps 1e-8) turns that into a step of up to lr. For these the
    /// test asserts the fp32 gradient is round-off (below this fraction of the model's largest gradient) and
    /// the weight moved by at most lr, Adam's bound on one step; every other tensor meets the tolerances above.
    /// </summary>
    private const double ZeroGradientBound = 1e-6;

    private const string DPrefix = LiteVaeTrainer.DiscriminatorPrefix;

    [Fact]
    public void OneFp32StepEqualsTheIndependentPyTorchStep()
    {
        string path = RepoPaths.Fixtures("twin", "tiny-step.safetensors");
        var meta = Safetensors.ReadHeader(path).Metadata;
        var f = Safetensors.Load(path);
        try
        {
            Run(path, meta, f);
        }
        finally
        {
            foreach (var t in f.Values) t.Dispose();
        }
    }

    private void Run(string path, IReadOnlyDictionary<string, string> meta, Dictionary<string, Tensor> f)
    {
        using var trainerJson = JsonDocument.Parse(meta["trainer"]);
        var tj = trainerJson.RootElement;
        long seed = tj.GetProperty("seed").GetInt64();
        long step = tj.GetProperty("step").GetInt64();
        string purpose = tj.GetProperty("noise_purpose").GetString()!;

        // The fixture encodes the trainer's default recipe; if a default changes, regenerate it.
        var options = new TrainerOptions { Seed = seed };
        Assert.Equal(Precision.Fp32, options.Precision);
        Assert.Equal(1, options.MicroBatches);
        Assert.Null(options.ClipGradNorm);
        Assert.False(options.Ema);
        Assert.Equal(0, step);
        Assert.Equal(tj.GetProperty("lr").GetDouble(), options.Adam.Lr);
        Assert.Equal(tj.GetProperty("beta1").GetDouble(), options.Adam.Beta1);
        Assert.Equal(tj.GetProperty("beta2").GetDouble(), options.Adam.Beta2);
        Assert.Equal(tj.GetProperty("eps").GetDouble(), options.Adam.Eps);
        Assert.Equal(tj.GetProperty("disc_lr_ratio").GetDouble(), options.DiscLrRatio);
        var loss = new LossConfig { DiscStart = 0 };
        AssertRecipe(meta["loss"], loss);

        // Posterior noise: the trainer's generator for (seed, step 0, "posterior/0") gives the fixture's draw.
        var noise = f["noise"];
        Assert.Equal(ulong.Parse(tj.GetProperty("noise_seed").GetString()!, CultureInfo.InvariantCulture), (ulong)StepRandom.Derive(seed, step, purpose));
        using (var random = new StepRandom(seed, CPU))
        using (var drawn = randn(noise.shape, ScalarType.Float32, CPU, generator: random.For(step, purpose)))
        {
            double noiseDiff = TensorAssert.MaxAbsDiff(drawn, noise);
            output.WriteLine($"posterior noise: max |StepRandom draw - fixture| = {noiseDiff:E3} ({noise.numel()} values)");
            Assert.True(drawn.allclose(noise, 0, 0), $"StepRandom's draw differs from the fixture's noise by up to {noiseDiff:E3}");
        }

        // Models from the fixture's initial weights (strict loads).
        using var discJson = JsonDocument.Parse(meta["discriminator"]);
        var dj = discJson.RootElement;
        Assert.Equal("patchgan", dj.GetProperty("type").GetString());
        using var ae = new LiteAutoencoder(FixtureConfig.Parse(meta["config"], path));
        using var disc = new PatchGanDiscriminator(new PatchGanConfig(Ndf: dj.GetProperty("ndf").GetInt32(),
            NLayers: dj.GetProperty("n_layers").GetInt32(), UseBn: dj.GetProperty("use_bn").GetBoolean()));
        using var lpips = new Lpips(LpipsNet.Vgg);
        StateDict.Load(ae, Select(f, k => k.StartsWith("encoder.") || k.StartsWith("decoder.")), path);
        StateDict.Load(disc, Select(f, k => k.StartsWith(DPrefix)), path, prefix: DPrefix);
        LoadLpips(lpips, meta["lpips"], f);

        using var trainer = new LiteVaeTrainer(ae, disc, lpips, loss, options, CPU);
        var images = f["images"];
        Assert.Equal(ScalarType.Byte, images.dtype);
        trainer.TrainStep(images.contiguous().data<byte>().ToArray(), images.shape);
        var terms = trainer.ReadWindow().Means.ToDictionary(kv => kv.Key, kv => kv.Value);
        using var snap = trainer.Snapshot("", null, null);
        var files = snap.Files.ToDictionary(x => x.FileName, x => x.Tensors);

        var failures = new List<string>();
        var zero = ExactlyZeroGradients(f);
        output.WriteLine($"{zero.Count} parameters have an exactly zero gradient in float64: {string.Join(", ", zero.Order(StringComparer.Ordinal))}");
        var opt = files["optimizer.safetensors"].ToDictionary(kv => kv.Key, kv => kv.Value);
        var (gGradWorst, gZeroWorst) = CompareGradients(opt, "generator.exp_avg.", "", f, options.Adam.Beta1, zero, "autoencoder", failures);
        var (dGradWorst, _) = CompareGradients(opt, "discriminator.exp_avg.", DPrefix, f, options.Adam.Beta1, zero, "discriminator", failures);
        var (aeWorst, aeZeroWorst) = CompareWeights(files["model.safetensors"], f, zero, options.Adam.Lr, "autoencoder", failures);
        var (dWorst, _) = CompareWeights(files["discriminator.safetensors"], f, zero, options.Adam.Lr, "discriminator", failures);
        double termWorst = CompareTerms(terms, f, failures);

        output.WriteLine($"worst relative difference: autoencoder weights {aeWorst:E3}, discriminator weights {dWorst:E3} (tolerance {WeightTolerance:E0})");
        output.WriteLine($"worst relative difference: autoencoder gradients {gGradWorst:E3}, discriminator gradients {dGradWorst:E3} (tolerance {GradientTolerance:E0})");
        output.WriteLine($"zero-gradient parameters: largest fp32 gradient {gZeroWorst:E3} x the model's largest (bound {ZeroGradientBound:E0}); " +
                         $"largest weight change {aeZeroWorst:E3} x lr (bound 1)");
        output.WriteLine($"worst relative difference: loss terms {termWorst:E3} (tolerance {TermTolerance:E0})");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>The fixture's loss recipe must be the one the trainer runs.</summary>
    private static void AssertRecipe(string json, LossConfig c)
    {
        using var doc = JsonDocument.Parse(json);
        var l = doc.RootElement;
        Assert.Equal(l.GetProperty("l1_weight").GetDouble(), c.L1Weight);
        Assert.Equal(l.GetProperty("perceptual_weight").GetDouble(), c.PerceptualWeight);
        Assert.Equal(l.GetProperty("wavelet_weight").GetDouble(), c.WaveletWeight);
        Assert.Equal(l.GetProperty("gaussian_weight").GetDouble(), c.GaussianWeight);
        Assert.Equal(l.GetProperty("kl_weight").GetDouble(), c.KlWeight);
        Assert.Equal(KlReduction.ElementMean, c.KlReduction);
        Assert.Equal("element_mean", l.GetProperty("kl_reduction").GetString());
        Assert.Equal(l.GetProperty("charbonnier_eps").GetDouble(), c.CharbonnierEps);
        Assert.Equal(l.GetProperty("gaussian_kernel").GetInt32(), c.GaussianKernel);
        Assert.Equal(l.GetProperty("gaussian_sigma").GetDouble(), c.GaussianSigma);
        Assert.Equal(l.GetProperty("gan_loss").GetString(), c.GanLoss);
        Assert.Equal(l.GetProperty("adversarial_weight").GetDouble(), c.AdversarialWeight);
        Assert.Equal(AdversarialWeighting.Constant, c.Weighting);
        Assert.Equal("constant", l.GetProperty("weighting").GetString());
        Assert.Equal(l.GetProperty("disc_start").GetInt64(), c.DiscStart);
        Assert.Equal(l.GetProperty("disc_factor").GetDouble(), c.DiscFactor);
    }

    /// <summary>
    /// VGG-LPIPS: the backbone from the shared weight formula (too big to store; the fixture holds a
    /// per-tensor sum and absolute sum to prove both sides use the same values), the heads from the fixture.
    /// </summary>
    private static void LoadLpips(Lpips lpips, string json, Dictionary<string, Tensor> f)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("vgg", doc.RootElement.GetProperty("net").GetString());
        var backbone = doc.RootElement.GetProperty("backbone_keys").EnumerateArray().Select(e => e.GetString()!).ToArray();
        FormulaWeights.Fill(lpips, stripPrefix: "net.");
        var state = lpips.state_dict();
        var fingerprint = f["lpips.backbone_fingerprint"];
        Assert.Equal(new long[] { backbone.Length, 2 }, fingerprint.shape);
        Assert.Equal(state.Keys.Where(k => k.StartsWith("net.")).OrderBy(k => k, StringComparer.Ordinal), backbone.OrderBy(k => k, StringComparer.Ordinal));
        for (int i = 0; i < backbone.Length; i++)
        {
            using var w = state[backbone[i]].to(float64);
            double sum = w.sum().item<double>(), abs = w.abs().sum().item<double>();
            double eSum = fingerprint[i, 0].item<double>(), eAbs = fingerprint[i, 1].item<double>();
            Assert.True(Math.Abs(sum - eSum) <= 1e-9 * eAbs && Math.Abs(abs - eAbs) <= 1e-9 * eAbs,
                $"LPIPS {backbone[i]}: formula weights sum {sum} / {abs}, fixture {eSum} / {eAbs}");
        }
        var heads = state.Keys.Where(k => k.StartsWith("lin")).ToList();
        Assert.Equal(5, heads.Count);
        using (no_grad())
            foreach (var k in heads)
                state[k].copy_(f["lpips." + k]);
    }

    /// <summary>
    /// Every tensor of a snapshot file against expected.{key}. Returns the worst relative difference, and for
    /// the zero-gradient parameters the largest weight change in units of lr.
    /// </summary>
    private (double Worst, double ZeroWorst) CompareWeights(IReadOnlyList<KeyValuePair<string, Tensor>> ours, Dictionary<string, Tensor> f,
        HashSet<string> zero, double lr, string what, List<string> failures)
    {
        bool disc = what == "discriminator";
        var expectedKeys = f.Keys.Where(k => k.StartsWith("expected.") && k.StartsWith("expected." + DPrefix) == disc).ToHashSet();
        var seen = new HashSet<string>();
        double worst = 0, zeroWorst = 0, updateWorst = 0;
        long stepElements = 0, elements = ours.Where(kv => f.ContainsKey("grad." + kv.Key)).Sum(kv => kv.Value.numel());
        string worstKey = "", updateKey = "";
        foreach (var (key, value) in ours)
        {
            string ek = "expected." + key;
            if (!f.TryGetValue(ek, out var expected))
            {
                failures.Add($"{what}: {key} has no expected value in the fixture");
                continue;
            }
            seen.Add(ek);
            if (!expected.is_floating_point())
            {
                if (!value.data<long>().ToArray().SequenceEqual(expected.data<long>().ToArray()))
                    failures.Add($"{what}: {key} is [{string.Join(", ", value.data<long>().ToArray())}], expected [{string.Join(", ", expected.data<long>().ToArray())}]");
                continue;
            }
            if (zero.Contains(key))
            {
                double moved = TensorAssert.MaxAbsDiff(value, f[key]) / lr;
                zeroWorst = Math.Max(zeroWorst, moved);
                if (!(moved <= 1 + 1e-3)) failures.Add($"{what} weight {key} (zero gradient): moved by {moved:E3} x lr, more than one Adam step can");
                continue;
            }
            double rel = Relative(value, expected);
            if (rel > worst) (worst, worstKey) = (rel, key);
            if (!(rel <= WeightTolerance)) failures.Add($"{what} weight {key}: relative difference {rel:E3} > {WeightTolerance:E0}");
            if (!f.TryGetValue("grad." + key, out var grad)) continue;   // BatchNorm running statistics: no step size
            using var large = grad.abs() >= StepGradientFloor;
            using var err = (value.to(float64) - expected.to(float64)).abs().masked_select(large);
            stepElements += err.numel();
            if (err.numel() == 0) continue;
            double stepErr = err.max().item<double>() / lr;
            if (stepErr > updateWorst) (updateWorst, updateKey) = (stepErr, key);
            if (!(stepErr <= StepTolerance)) failures.Add($"{what} weight {key}: the step differs by {stepErr:E3} x lr > {StepTolerance:E0}");
        }
        foreach (var k in expectedKeys.Except(seen)) failures.Add($"{what}: the trainer has no {k["expected.".Length..]}");
        output.WriteLine($"{what}: {seen.Count} state tensors compared; worst {worstKey} {worst:E3}; worst step {updateKey} {updateWorst:E3} x lr " +
                         $"(tolerance {StepTolerance:E0}) over {stepElements} of {elements} parameter values");
        return (worst, zeroWorst);
    }

    /// <summary>Parameter keys whose float64 gradient in the fixture is zero up to round-off (below 1e-12 of the model's largest).</summary>
    private static HashSet<string> ExactlyZeroGradients(Dictionary<string, Tensor> f)
    {
        var result = new HashSet<string>();
        foreach (bool disc in new[] { false, true })
        {
            var keys = f.Keys.Where(k => k.StartsWith("grad.") && k.StartsWith("grad." + DPrefix) == disc).ToList();
            double modelMax = keys.Max(k => f[k].abs().max().item<float>());
            foreach (var k in keys)
                if (f[k].abs().max().item<float>() <= 1e-12 * modelMax)
                    result.Add(k["grad.".Length..]);
        }
        return result;
    }

    /// <summary>
    /// Gradients from Adam's first moment after one step (exp_avg = (1 − beta1) g) against grad.{key}. Returns the
    /// worst relative difference, and for the zero-gradient parameters the largest |g| over the model's largest.
    /// </summary>
    private (double Worst, double ZeroWorst) CompareGradients(Dictionary<string, Tensor> opt, string slotPrefix, string keyPrefix,
        Dictionary<string, Tensor> f, double beta1, HashSet<string> zero, string what, List<string> failures)
    {
        var slots = opt.Keys.Where(k => k.StartsWith(slotPrefix)).ToList();
        var expectedKeys = f.Keys.Where(k => k.StartsWith("grad.") && k.StartsWith("grad." + DPrefix) == (keyPrefix == DPrefix)).ToList();
        Assert.Equal(expectedKeys.Count, slots.Count);
        double modelMax = expectedKeys.Max(k => f[k].abs().max().item<float>());
        double worst = 0, zeroWorst = 0;
        string worstKey = "";
        foreach (var slot in slots)
        {
            string key = keyPrefix + slot[slotPrefix.Length..];
            if (!f.TryGetValue("grad." + key, out var expected))
            {
                failures.Add($"{what}: no expected gradient for {key}");
                continue;
            }
            using var grad = opt[slot].to(float64) / (1.0 - beta1);
            if (zero.Contains(key))
            {
                double r = grad.abs().max().item<double>() / modelMax;
                zeroWorst = Math.Max(zeroWorst, r);
                if (!(r <= ZeroGradientBound)) failures.Add($"{what} gradient {key}: exactly zero in float64, but {r:E3} x the largest gradient here");
                continue;
            }
            double rel = Relative(grad, expected);
            if (rel > worst) (worst, worstKey) = (rel, key);
            if (!(rel <= GradientTolerance)) failures.Add($"{what} gradient {key}: relative difference {rel:E3} > {GradientTolerance:E0}");
        }
        output.WriteLine($"{what}: {slots.Count} gradients compared; worst {worstKey} {worst:E3}");
        return (worst, zeroWorst);
    }

    private double CompareTerms(Dictionary<string, double> terms, Dictionary<string, Tensor> f, List<string> failures)
    {
        double worst = 0;
        foreach (var key in f.Keys.Where(k => k.StartsWith("term.")).OrderBy(k => k, StringComparer.Ordinal))
        {
            string name = key["term.".Length..];
            double expected = f[key].item<float>();
            if (!terms.TryGetValue(name, out var ours))
            {
                failures.Add($"the trainer logged no {name}");
                continue;
            }
            double rel = Math.Abs(ours - expected) / Math.Abs(expected);
            worst = Math.Max(worst, rel);
            output.WriteLine($"  {name,-16} ours {ours,14:G9}  expected {expected,14:G9}  relative {rel:E2}");
            if (!(rel <= TermTolerance)) failures.Add($"loss term {name}: {ours:G9}, expected {expected:G9} (relative {rel:E3} > {TermTolerance:E0})");
        }
        return worst;
    }

    /// <summary>max |a − e| / max |e|, in float64.</summary>
    private static double Relative(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var e = expected.to(float64);
        using var a = actual.to(float64);
        double scale = e.abs().max().item<double>();
        Assert.True(scale > 0, "expected tensor is all zeros; the check would be meaningless");
        return (a - e).abs().max().item<double>() / scale;
    }

    private static Dictionary<string, Tensor> Select(Dictionary<string, Tensor> f, Func<string, bool> which) =>
        f.Where(kv => which(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
}
