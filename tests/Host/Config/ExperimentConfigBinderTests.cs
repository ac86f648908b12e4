using LiteVae.Actors;
using LiteVae.Host.Config;
using LiteVae.Host.Tests.Support;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;

namespace LiteVae.Host.Tests.Config;

public sealed class ExperimentConfigBinderTests
{
    public static IEnumerable<object[]> AllExperimentConfigs() =>
        Directory.EnumerateFiles(RepoPaths.Configs(), "*.conf", SearchOption.TopDirectoryOnly)
            .Concat(Directory.EnumerateFiles(RepoPaths.Configs("runs"), "*.conf"))
            .Select(f => new object[] { Path.GetRelativePath(RepoPaths.Configs(), f) });

    [Theory]
    [MemberData(nameof(AllExperimentConfigs))]
    public void EveryExperimentConfigBinds(string relativePath)
    {
        var c = ExperimentConfigBinder.Load(RepoPaths.Configs(relativePath));
        Assert.False(string.IsNullOrWhiteSpace(c.Name));
        Assert.True(c.Run.MaxSteps > 0);
        // The resolved text is itself a valid config that binds to the same experiment.
        var again = ExperimentConfigBinder.Bind(HoconFile.Parse(c.ResolvedText, "resolved"));
        // (Compared as JSON: the records hold lists, whose record equality is by reference.)
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(c with { ResolvedText = "" }),
            System.Text.Json.JsonSerializer.Serialize(again with { ResolvedText = "" }));
    }

    [Fact]
    public void PhaseAAndPhaseBFollowTheSpecRecipe()
    {
        var a = ExperimentConfigBinder.Load(RepoPaths.Configs("phase-a.conf"));
        Assert.Equal(128, a.Data.Resolution);
        Assert.Equal(32, a.Data.BatchSize);
        Assert.Equal(100_000, a.Run.MaxSteps);
        Assert.IsType<NullDiscriminatorConfig>(a.Discriminator);
        Assert.Equal(12, a.Model.EmbedDim);
        Assert.Equal(new AdamOptions(1e-4, 0.5, 0.9, 1e-8), a.Trainer.Adam);
        Assert.Equal((1.0, 1.0, 1.0, 0.5, 0.01), (a.Loss.L1Weight, a.Loss.PerceptualWeight, a.Loss.WaveletWeight, a.Loss.GaussianWeight, a.Loss.KlWeight));
        Assert.Equal(KlReduction.ElementMean, a.Loss.KlReduction);
        Assert.Equal(PerceptualNet.Vgg, a.Perceptual);

        var b = ExperimentConfigBinder.Load(RepoPaths.Configs("phase-b.conf"));
        Assert.Equal(256, b.Data.Resolution);
        Assert.Equal(50_000, b.Run.MaxSteps);
        var unet = Assert.IsType<UNetGanConfig>(b.Discriminator);
        Assert.Equal(16, unet.DCh);
        Assert.Empty(unet.AttentionResolutions);
        Assert.Equal(("hinge", 0.1, AdversarialWeighting.Constant, 0L), (b.Loss.GanLoss, b.Loss.AdversarialWeight, b.Loss.Weighting, b.Loss.DiscStart));
    }

    [Theory]
    [InlineData("a1", 0.1, 0.1, "none")]
    [InlineData("a2", 1.0, 0.5, "none")]
    [InlineData("b0", 1.0, 0.5, "none")]
    [InlineData("b1", 1.0, 0.5, "patchgan")]
    [InlineData("b2", 1.0, 0.5, "gigagan")]
    [InlineData("b3", 1.0, 0.5, "unetgan")]
    [InlineData("b4", 1.0, 0.5, "unetgan")]
    [InlineData("b5", 1.0, 0.5, "unetgan")]
    public void SeedRowsCarryTheReadmeWeights(string row, double wave, double gauss, string disc)
    {
        var c = ExperimentConfigBinder.Load(RepoPaths.Configs("runs", row + ".conf"));
        Assert.Equal(row, c.Name);
        Assert.Equal((wave, gauss, 0.01), (c.Loss.WaveletWeight, c.Loss.GaussianWeight, c.Loss.KlWeight));
        Assert.Equal(disc, c.Discriminator.Type);
        Assert.Equal(row.StartsWith('a') ? 128 : 256, c.Data.Resolution);
        if (c.Discriminator is UNetGanConfig u)
            Assert.Equal(row switch { "b3" => 16, "b4" => 32, _ => 64 }, u.DCh);
    }

    private const string Minimal = """
        experiment { name = t }
        model {
          embed_dim = 4
          encoder { extractor_channels = 8, extractor_mult = [1, 2], extractor_resblocks = 1, aggregate_channels = 8, aggregate_mult = [1, 2], aggregate_resblocks = 1 }
          decoder { channels = 16, channel_mult = [1, 2, 2, 2], num_res_blocks = 1 }
        }
        data { source = "x.tar", batch-size = 8 }
        trainer { max-steps = 10 }
        eval { images = 0 }
        """;

    [Fact]
    public void DefaultsAreTheRecipe()
    {
        var c = ExperimentConfigBinder.Bind(HoconFile.Parse(Minimal, "exp.conf"));
        Assert.Equal(Precision.Fp32, c.Trainer.Precision);
        Assert.Equal(new AdamOptions(), c.Trainer.Adam);
        Assert.Null(c.Trainer.ClipGradNorm);
        Assert.Equal(new LossConfig(), c.Loss);
        Assert.IsType<NullDiscriminatorConfig>(c.Discriminator);
        Assert.Equal(("vgg", false), (c.Eval.Lpips, c.Eval.Rfid)); // training evaluations: LPIPS when its weights exist, no rFID
    }

    [Theory]
    [InlineData("trainer.learning-rate=1", "exp.conf#trainer: unknown key 'trainer.learning-rate'")]
    [InlineData("trainer.precision=fp8", "exp.conf#trainer: key 'precision' = 'fp8' is not one of")]
    [InlineData("trainer.micro-batches=3", "key 'micro-batches' = 3 must divide data.batch-size = 8")]
    [InlineData("loss.gaussian-kernel=4", "exp.conf#loss: key 'gaussian-kernel' = 4 must be odd")]
    [InlineData("loss.kl-weight=-1", "exp.conf#loss: key 'kl-weight' = -1 is out of range")]
    [InlineData("eval.images=4", "needs an eval-data { } section")]
    [InlineData("eval.use-ema=true", "key 'use-ema' = true needs trainer.ema = true")]
    [InlineData("eval.lpips=squeeze", "exp.conf#eval: key 'lpips' = 'squeeze' is not one of: vgg, alex, none")]
    [InlineData("trainer.device=gpu", "key 'device' = 'gpu' is not one of")]
    [InlineData("lossy.x=1", "exp.conf: unknown key 'lossy' (did you mean 'loss'?)")]
    public void BadValuesNameTheFileAndKey(string setting, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfigBinder.Bind(HoconFile.Parse(Minimal, "exp.conf", [setting])));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_crop_the_unetgan_discriminator_cannot_take_is_refused_before_the_run_starts()
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfigBinder.Load(RepoPaths.Configs("phase-b.conf"), ["data.resolution=32"]));
        Assert.Contains("key 'data.resolution' = 32 must be a multiple of 64 for the unetgan discriminator", e.Message);
        // An encoder with four wavelet levels downsamples by 16: a multiple of 8 is not enough.
        var deep = Assert.Throws<ConfigException>(() => ExperimentConfigBinder.Bind(HoconFile.Parse(Minimal, "exp.conf",
            ["model.encoder.dct_levels=4", "model.decoder.channel_mult=[1,2,2,2,2]", "data.resolution=40"])));
        Assert.Contains("key 'data.resolution' = 40 must be a multiple of 16 (the encoder downsamples by 16)", deep.Message);
        // The held-out crop goes through the autoencoder only: 32 is fine there.
        Assert.Equal(32, ExperimentConfigBinder.Load(RepoPaths.Configs("phase-b.conf"), ["eval-data.resolution=32"]).EvalData!.Resolution);
    }
}
