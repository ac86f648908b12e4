using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

/// <summary>End-to-end behaviour of the training step on a tiny LiteVAE + PatchGAN, on the CPU.</summary>
// Alone, like the distributed tests: the models' initial weights come from libtorch's process-wide RNG, which
// parallel classes would draw from at the same time (the learning checks below depend on the start).
[Collection(LiteVae.Model.Tests.Distributed.DistributedCollection.Name)]
public sealed class TrainerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    internal static AutoencoderConfig TinyAutoencoder() => new(
        4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(8, 4, 3, [1, 1, 2, 2], 0, 0.0));

    /// <summary>Weights shared by every trainer of a test, so runs start identical whatever the global RNG did.</summary>
    private static Dictionary<string, Tensor> InitialWeights(Func<nn.Module> build)
    {
        using var m = build();
        return m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    private sealed class Setup(Dictionary<string, Tensor> ae, Dictionary<string, Tensor> disc)
    {
        public Dictionary<string, Tensor> Ae { get; } = ae;
        public Dictionary<string, Tensor> Disc { get; } = disc;
    }

    private static Setup NewSetup()
    {
        torch.manual_seed(20261126);
        return new(InitialWeights(() => new LiteAutoencoder(TinyAutoencoder())),
            InitialWeights(() => new PatchGanDiscriminator(new PatchGanConfig(Ndf: 8, NLayers: 2))));
    }

    private static LiteVaeTrainer NewTrainer(Setup s, TrainerOptions options, LossConfig? loss = null, bool withDisc = true)
    {
        var ae = new LiteAutoencoder(TinyAutoencoder());
        StateDict.Load(ae, s.Ae, "test");
        IDiscriminator? d = null;
        if (withDisc)
        {
            var p = new PatchGanDiscriminator(new PatchGanConfig(Ndf: 8, NLayers: 2));
            StateDict.Load(p, s.Disc, "test");
            d = p;
        }
        return new LiteVaeTrainer(ae, d, lpips: null, loss ?? new LossConfig { DiscStart = 2 }, options, CPU);
    }

    /// <summary>The batch for a step: a deterministic function of the step (what a resumed data pipeline gives).</summary>
    internal static byte[] Batch(long step, int n = 4, int size = 32)
    {
        var rng = new Random((int)step * 7919 + 17);
        var b = new byte[n * 3 * size * size];
        // Smooth random images (sums of a few gradients), not white noise, so the AE can learn them.
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
            {
                double ax = rng.NextDouble() * 2 - 1, ay = rng.NextDouble() * 2 - 1, off = rng.NextDouble();
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        double v = off + 0.4 * (ax * x + ay * y) / size;
                        b[((i * 3 + c) * size + y) * size + x] = (byte)Math.Clamp(v * 255, 0, 255);
                    }
            }
        return b;
    }

    internal static readonly long[] Shape = [4, 3, 32, 32];

    private static TrainerOptions Options(Precision p = Precision.Fp32) => new()
    {
        Precision = p, Seed = 123, Ema = true, EmaDecay = 0.99, MicroBatches = 2, ClipGradNorm = 5.0,
        Adam = new AdamOptions(Lr: 1e-3),
    };

    private static float[] FlatWeights(CheckpointSnapshot snap) =>
        snap.Files.SelectMany(f => f.Tensors).SelectMany(t => t.Value.to_type(ScalarType.Float32).contiguous().data<float>().ToArray()).ToArray();

    [Fact]
    public void ResumingFromACheckpointGivesTheSameLossesAndBitwiseTheSameWeights()
    {
        const int k = 3;
        var setup = NewSetup();

        var straightLosses = new List<double>();
        CheckpointSnapshot straightEnd;
        using (var straight = NewTrainer(setup, Options()))
        {
            for (int s = 0; s < 2 * k; s++)
            {
                straight.TrainStep(Batch(s), Shape);
                straightLosses.AddRange(straight.ReadWindow().Means.Where(m => !m.Key.StartsWith("lr/")).Select(m => m.Value));
            }
            straightEnd = straight.Snapshot("cfg", null, null);
        }

        var resumedLosses = new List<double>();
        using (var first = NewTrainer(setup, Options()))
        {
            for (int s = 0; s < k; s++)
            {
                first.TrainStep(Batch(s), Shape);
                resumedLosses.AddRange(first.ReadWindow().Means.Where(m => !m.Key.StartsWith("lr/")).Select(m => m.Value));
            }
            using var snap = first.Snapshot("cfg", $"step {k}", null);
            CheckpointStore.Write(Path.Combine(_dir, "checkpoints"), snap, new RetentionPolicy());
        }
        // A fresh process would build new modules with other random weights: restore must overwrite all.
        var other = NewSetup();
        using var resumed = NewTrainer(other, Options());
        var ck = CheckpointDir.Open(_dir);
        resumed.Restore(ck);
        Assert.Equal(k, resumed.Step);
        for (int s = k; s < 2 * k; s++)
        {
            resumed.TrainStep(Batch(s), Shape);
            resumedLosses.AddRange(resumed.ReadWindow().Means.Where(m => !m.Key.StartsWith("lr/")).Select(m => m.Value));
        }
        using var resumedEnd = resumed.Snapshot("cfg", null, null);

        Assert.Equal(straightLosses, resumedLosses);
        Assert.Equal(straightEnd.Files.Select(f => f.FileName), resumedEnd.Files.Select(f => f.FileName));
        Assert.Equal(FlatWeights(straightEnd), FlatWeights(resumedEnd)); // model, EMA, discriminator, Adam state
        straightEnd.Dispose();
    }

    [Fact]
    public void ANonFiniteGradientSkipsThatStepAndTrainingRecovers()
    {
        var setup = NewSetup();
        using var t = NewTrainer(setup, Options() with { Ema = false });
        t.GradientHook = (step, grads) => { if (step == 2) grads[0].fill_(float.NaN); };
        t.TrainStep(Batch(0), Shape);
        t.TrainStep(Batch(1), Shape);
        t.ReadWindow();
        float[] before, after;
        using (var s = t.Snapshot("", null, null)) before = s.Files[0].Tensors.SelectMany(x => x.Value.contiguous().data<float>().ToArray()).ToArray();
        t.TrainStep(Batch(2), Shape);
        using (var s = t.Snapshot("", null, null)) after = s.Files[0].Tensors.SelectMany(x => x.Value.contiguous().data<float>().ToArray()).ToArray();
        Assert.Equal(before, after); // the generator update of step 2 was skipped
        var w = t.ReadWindow();
        Assert.Equal(new long[] { 2 }, w.SkippedSteps);
        Assert.Equal(1, w.TotalSkipped);

        t.TrainStep(Batch(3), Shape);
        var next = t.ReadWindow();
        Assert.Empty(next.SkippedSteps);
        Assert.All(next.Means, m => Assert.True(double.IsFinite(m.Value), $"{m.Key} = {m.Value}"));
        using var s4 = t.Snapshot("", null, null);
        Assert.NotEqual(after, s4.Files[0].Tensors.SelectMany(x => x.Value.contiguous().data<float>().ToArray()).ToArray());
    }

    [Fact]
    public void TooManyBadStepsInARowStopTheRunWithAClearMessage()
    {
        var setup = NewSetup();
        using var t = NewTrainer(setup, Options() with { MaxConsecutiveBadSteps = 3 }, withDisc: false);
        t.GradientHook = (step, grads) => { if (step >= 1) grads[0].fill_(float.PositiveInfinity); };
        for (int s = 0; s < 3; s++) t.TrainStep(Batch(s), Shape);
        Assert.Equal(new long[] { 1, 2 }, t.ReadWindow().SkippedSteps);
        t.TrainStep(Batch(3), Shape);
        var e = Assert.Throws<NonFiniteGradientException>(() => t.ReadWindow());
        Assert.Equal(3, e.Step);
        Assert.Contains("NaN/Inf", e.Message);
    }

    [Fact]
    public void SnapshotUsesReferenceKeyNamesAndSeparateFiles()
    {
        var setup = NewSetup();
        using var t = NewTrainer(setup, Options());
        t.TrainStep(Batch(0), Shape);
        using var snap = t.Snapshot("cfg", "pos", new CheckpointMetric("psnr", 20, true));
        Assert.Equal(["model.safetensors", "ema.safetensors", "discriminator.safetensors", "optimizer.safetensors"], snap.Files.Select(f => f.FileName));
        using var ae = new LiteAutoencoder(TinyAutoencoder());
        Assert.Equal(ae.state_dict().Keys.OrderBy(k => k), snap.Files[0].Tensors.Select(t => t.Key).OrderBy(k => k));
        Assert.All(snap.Files[0].Tensors, kv => Assert.True(kv.Key.StartsWith("encoder.") || kv.Key.StartsWith("decoder."), kv.Key));
        Assert.All(snap.Files[2].Tensors, kv => Assert.StartsWith("loss.discriminator.main.", kv.Key));
        Assert.Contains(snap.Files[3].Tensors, kv => kv.Key == "generator.exp_avg.decoder.conv_out.weight");
        Assert.Contains(snap.Files[3].Tensors, kv => kv.Key == "discriminator.step");
    }

    [Fact]
    public void InitFromLoadsWeightsOnlyAndStartsFresh()
    {
        var setup = NewSetup();
        string ckpts = Path.Combine(_dir, "checkpoints");
        using (var a = NewTrainer(setup, Options(), withDisc: false))
        {
            for (int s = 0; s < 2; s++) a.TrainStep(Batch(s), Shape);
            using var snap = a.Snapshot("cfg", null, null);
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        }
        using var b = NewTrainer(NewSetup(), Options()); // phase B: with a discriminator, other init
        var report = b.InitFrom(_dir);
        Assert.Empty(report.Missing);
        Assert.Equal(0, b.Step);
        var saved = Safetensors.Load(Path.Combine(ckpts, "last", "model.safetensors"));
        using var snapB = b.Snapshot("", null, null);
        foreach (var (key, value) in snapB.Files[0].Tensors)
            Assert.True(value.allclose(saved[key], 0, 0), key);
        // Fresh optimizer state.
        Assert.All(snapB.Files.Single(f => f.FileName == "optimizer.safetensors").Tensors, kv => Assert.Equal(0.0, kv.Value.abs().sum().to_type(ScalarType.Float64).item<double>()));
    }

    [Fact]
    public void TheDiscriminatorSeesTheGeneratorsReconstructionAndIsFrozenDuringTheGeneratorStep()
    {
        var setup = NewSetup();
        var ae = new LiteAutoencoder(TinyAutoencoder());
        StateDict.Load(ae, setup.Ae, "test");
        var inner = new PatchGanDiscriminator(new PatchGanConfig(Ndf: 8, NLayers: 2));
        StateDict.Load(inner, setup.Disc, "test");
        var spy = new SpyDiscriminator(inner);
        using var t = new LiteVaeTrainer(ae, spy, null, new LossConfig(), Options() with { MicroBatches = 1 }, CPU);
        t.TrainStep(Batch(0), Shape);
        // Calls: G step on the reconstruction, then D step on real, then on fake (separate BN batches).
        Assert.Equal(3, spy.Calls.Count);
        var (gInput, gFrozen, gRequiresGrad) = spy.Calls[0];
        var (realInput, dFrozen, _) = spy.Calls[1];
        var (fakeInput, _, fakeRequiresGrad) = spy.Calls[2];
        Assert.True(gFrozen, "D parameters must not require grad during the generator step");
        Assert.False(dFrozen, "D parameters must require grad during its own step");
        Assert.True(gRequiresGrad);
        Assert.False(fakeRequiresGrad);
        Assert.True(fakeInput.allclose(gInput, 0, 0), "D must see the very reconstruction G was trained on");
        Assert.False(realInput.allclose(fakeInput));
    }

    private sealed class SpyDiscriminator(PatchGanDiscriminator inner) : IDiscriminator
    {
        public List<(Tensor input, bool frozen, bool inputRequiresGrad)> Calls { get; } = [];
        public string Type => inner.Type;
        public nn.Module<Tensor, Tensor> Module => inner;

        public IReadOnlyList<Tensor> Logits(Tensor images)
        {
            Calls.Add((images.detach().clone().DetachFromDisposeScope(), inner.parameters().All(p => !p.requires_grad), images.requires_grad));
            return inner.Logits(images);
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void NoTensorsLeakOver100Steps()
    {
        var setup = NewSetup();
        using var t = NewTrainer(setup, Options() with { MicroBatches = 1 }, new LossConfig { DiscStart = 0 });
        var batch = Batch(0, n: 2, size: 16);
        long[] shape = [2, 3, 16, 16];
        // PatchGAN with 2 layers needs >= 16 px: 16 -> 8 -> 7 -> 6.
        // Live tensors after 20 steps and after 100 steps must be the same: a per-step leak of even
        // one tensor would show up 80 times. (The first window allocates a few long-lived tensors.)
        long LiveAfter(int steps)
        {
            for (int s = 0; s < steps; s++)
            {
                t.TrainStep(batch, shape);
                if (s % 10 == 9) t.ReadWindow();
            }
            return DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }
        long after20 = LiveAfter(20);
        long after100 = LiveAfter(80);
        Assert.True(after100 - after20 <= 0, $"{after100 - after20} tensors leaked over 80 steps");
    }

    [Fact]
    public void ChannelsLastGivesTheSameTrainingNumbers()
    {
        var setup = NewSetup();
        List<double> Run(bool channelsLast, bool encoderToo)
        {
            var options = Options() with { ChannelsLast = channelsLast, EncoderChannelsLast = encoderToo, MicroBatches = 1 };
            using var t = NewTrainer(setup, options, new LossConfig { DiscStart = 0 });
            var losses = new List<double>();
            for (int s = 0; s < 3; s++)
            {
                t.TrainStep(Batch(s), Shape);
                losses.AddRange(t.ReadWindow().Means.Where(m => m.Key is "g/total" or "d/d_loss").Select(m => m.Value));
            }
            using var rec = t.Reconstruct(Batch(9), Shape);
            Assert.Equal(Shape, rec.shape);
            return losses;
        }
        var nchw = Run(false, false);
        foreach (var (cl, encoder) in new[] { (true, false), (true, true) })
        {
            var other = Run(cl, encoder);
            for (int i = 0; i < nchw.Count; i++)
                Assert.True(Math.Abs(nchw[i] - other[i]) < 1e-4 * Math.Max(1, Math.Abs(nchw[i])), $"value {i}: NCHW {nchw[i]}, channels-last (encoder too: {encoder}) {other[i]}");
        }
    }

    [Fact]
    public void ChannelsLastKeepsTheEncoderNchwUnlessAskedFor()
    {
        var setup = NewSetup();
        foreach (bool encoderToo in new[] { false, true })
        {
            var ae = new LiteAutoencoder(TinyAutoencoder());
            StateDict.Load(ae, setup.Ae, "test");
            using var t = new LiteVaeTrainer(ae, null, null, new LossConfig { PerceptualWeight = 0 },
                Options() with { ChannelsLast = true, EncoderChannelsLast = encoderToo, MicroBatches = 1 }, CPU);
            var convs = ae.named_parameters().Where(p => p.parameter.dim() == 4 && p.parameter.shape[1] > 1 && p.parameter.shape[2] > 1).ToList();
            Assert.All(convs.Where(p => p.name.StartsWith("decoder.", StringComparison.Ordinal)), p => Assert.True(MemoryLayout.IsChannelsLast(p.parameter), p.name));
            Assert.All(convs.Where(p => p.name.StartsWith("encoder.", StringComparison.Ordinal)), p => Assert.Equal(encoderToo, MemoryLayout.IsChannelsLast(p.parameter)));
        }
    }

    [Fact]
    public void LpipsRunsInTheComputeDtypeAndLayout()
    {
        var setup = NewSetup();
        var ae = new LiteAutoencoder(TinyAutoencoder());
        StateDict.Load(ae, setup.Ae, "test");
        var lpips = new LiteVae.Model.Perceptual.Lpips(LiteVae.Model.Perceptual.LpipsNet.Vgg);
        using (no_grad())
            foreach (var p in lpips.parameters()) p.normal_(0, 0.02); // random weights: plumbing only
        using var t = new LiteVaeTrainer(ae, null, lpips, new LossConfig(), Options(Precision.Bf16) with { ChannelsLast = true, MicroBatches = 1 }, CPU);
        Assert.True(t.PerceptualEnabled);
        Assert.All(lpips.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.True(MemoryLayout.IsChannelsLast(lpips.parameters().First(p => p.dim() == 4)));
        t.TrainStep(Batch(0, n: 2), [2, 3, 32, 32]);
        var w = t.ReadWindow();
        var lp = w.Means.Single(m => m.Key == "g/lpips").Value;
        Assert.True(double.IsFinite(lp) && lp != 0, $"lpips term {lp}"); // random heads can be negative
        Assert.Empty(w.SkippedSteps);
    }

    [Fact]
    public void Bf16TrainingTracksFp32()
    {
        var setup = NewSetup();
        List<double> Curve(Precision p)
        {
            using var t = NewTrainer(setup, Options(p) with { Ema = false, ClipGradNorm = null, Adam = new AdamOptions(Lr: 2e-3) },
                new LossConfig(), withDisc: false);
            var curve = new List<double>();
            for (int s = 0; s < 48; s++)
            {
                t.TrainStep(Batch(s % 4, n: 4, size: 16), [4, 3, 16, 16]);
                if (s % 6 == 5)
                    curve.Add(t.ReadWindow().Means.Single(m => m.Key == "g/total").Value);
            }
            return curve;
        }
        var fp32 = Curve(Precision.Fp32);
        var bf16 = Curve(Precision.Bf16);
        output.WriteLine("mean loss per 6-step window, fp32: " + string.Join(" ", fp32.Select(v => v.ToString("0.0000"))));
        output.WriteLine("mean loss per 6-step window, bf16: " + string.Join(" ", bf16.Select(v => v.ToString("0.0000"))));
        // (The tiny SMC decoder learns slowly at stable learning rates, and its initial weights come from
        // the global RNG that parallel tests share: a drop between the halves of the run, not convergence.)
        static bool Learned(List<double> c) => c.Skip(c.Count / 2).Average() < 0.98 * c.Take(c.Count / 2).Average();
        Assert.True(Learned(fp32), $"fp32 did not learn: {string.Join(", ", fp32)}");
        Assert.True(Learned(bf16), $"bf16 did not learn: {string.Join(", ", bf16)}");
        for (int i = 0; i < fp32.Count; i++)
            Assert.True(Math.Abs(bf16[i] - fp32[i]) < 0.1 * fp32[i], $"window {i}: fp32 {fp32[i]:0.0000}, bf16 {bf16[i]:0.0000}");
    }
}
