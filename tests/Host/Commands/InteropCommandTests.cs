using System.Text.Json;
using LiteVae.Data.Imaging;
using LiteVae.Host.Config;
using LiteVae.Host.Tests.Support;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Distributions;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Tests.Commands;

/// <summary>
/// Interop: encode/decode with half the weights, the model config carried by the weights file (--model optional),
/// `convert` between Lightning .ckpt and safetensors, and `latent-stats`.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class InteropCommandTests : IDisposable
{
    /// <summary>The config of tests/fixtures/lightning (make_lightning_fixtures.py), as HOCON.</summary>
    private const string LightningConf = """
        model {
          embed_dim = 2, use_quant = true
          encoder { dct_levels = 1, extractor_channels = 8, extractor_mult = [1], extractor_resblocks = 1,
                    aggregate_channels = 8, aggregate_mult = [1], aggregate_resblocks = 1 }
          decoder { channels = 8, channel_mult = [1, 1], num_res_blocks = 0 }
        }
        """;

    private readonly TempDir _dir = new();
    private readonly string _conf, _images;
    private readonly LiteAutoencoder _model;

    public InteropCommandTests()
    {
        _conf = _dir.File("tiny.conf");
        File.WriteAllText(_conf, TinyModel.Conf);
        manual_seed(77);
        _model = new LiteAutoencoder(ModelConfigBinder.Bind(HoconFile.Load(_conf)));
        _model.eval();
        _images = Path.Combine(_dir.Path, "images");
        TinyModel.WriteNoisePngs(_images, 32, 32, seed: 9, "a.png", "b.png", "c.png", "d.png");
    }

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
    }

    private static string Fixture(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "lightning", name);

    private string SaveWeights(string name, Func<string, bool> keep, bool embedConfig)
    {
        string path = _dir.File(name);
        var meta = embedConfig ? new Dictionary<string, string> { [ModelConfigJson.MetadataKey] = ModelConfigJson.Write(_model.Config) } : null;
        Safetensors.Save(path, _model.state_dict().Where(kv => keep(kv.Key)), meta);
        return path;
    }

    private Tensor Input()
    {
        var bytes = new[] { "a.png", "b.png", "c.png", "d.png" }.SelectMany(n => ImageFile.Read(Path.Combine(_images, n)).Pixels).ToArray();
        using var pixels = tensor(bytes, [4, 32, 32, 3], ScalarType.Byte);
        return PixelConversion.ToModelInput(pixels);
    }

    private static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.bytes.SequenceEqual(b.bytes);

    private static void AssertOk(CliRunner.Result r) => Assert.True(r.ExitCode == 0, r.Error + r.Out);

    private static void AssertOneLineError(CliRunner.Result r, params string[] fragments)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.ErrorLines);
        foreach (var f in fragments)
            Assert.Contains(f, r.ErrorLines[0]);
    }

    [Fact]
    public void EncodeRunsOnEncoderOnlyWeights()
    {
        string weights = SaveWeights("encoder.safetensors", k => k.StartsWith("encoder."), embedConfig: false);
        string latents = _dir.File("latents.safetensors");
        AssertOk(CliRunner.Run("encode", "--model", _conf, "--weights", weights, "--device", "cpu", "--input", _images, "--output", latents));
        using var mean = Safetensors.Load(latents)["mean"];
        using var x = Input();
        using var _ = no_grad();
        using var q = _model.Encode(x);
        Assert.True(mean.allclose(q.Mean, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void DecodeRunsOnDecoderOnlyWeightsAndReconstructNeedsBoth()
    {
        string decoder = SaveWeights("decoder.safetensors", k => k.StartsWith("decoder."), embedConfig: false);
        string latents = _dir.File("z.safetensors");
        manual_seed(3);
        using var z = randn(2, 4, 4, 4);
        Safetensors.Save(latents, [new("z", z)]);
        string output = _dir.File("images.safetensors");
        AssertOk(CliRunner.Run("decode", "--model", _conf, "--weights", decoder, "--device", "cpu", "--input", latents, "--output", output));
        using var images = Safetensors.Load(output)["images"];
        using var _ = no_grad();
        using var expected = _model.Decode(z);
        Assert.True(images.allclose(expected, rtol: 1e-5, atol: 1e-5));

        var r = CliRunner.Run("reconstruct", "--model", _conf, "--weights", decoder, "--device", "cpu", "--input", _images, "--output", _dir.File("rec"));
        AssertOneLineError(r, decoder, "missing: encoder.");
    }

    [Fact]
    public void AMissingOrMisShapedKeyOfTheUsedPartIsNamed()
    {
        string weights = SaveWeights("partial.safetensors", k => k.StartsWith("encoder.") && k != "encoder.aggregator.conv_out.bias", embedConfig: false);
        var r = CliRunner.Run("encode", "--model", _conf, "--weights", weights, "--device", "cpu", "--input", _images, "--output", _dir.File("x.safetensors"));
        AssertOneLineError(r, weights, "missing: encoder.aggregator.conv_out.bias", "needs the encoder");

        string misShaped = _dir.File("misshaped.safetensors");
        Safetensors.Save(misShaped, _model.state_dict().Where(kv => kv.Key.StartsWith("decoder."))
            .Select(kv => kv.Key == "decoder.conv_out.bias" ? new KeyValuePair<string, Tensor>(kv.Key, zeros(5)) : kv));
        using var z = randn(1, 4, 2, 2);
        Safetensors.Save(_dir.File("z.safetensors"), [new("z", z)]);
        r = CliRunner.Run("decode", "--model", _conf, "--weights", misShaped, "--device", "cpu", "--input", _dir.File("z.safetensors"), "--output", _dir.File("o.safetensors"));
        AssertOneLineError(r, "'decoder.conv_out.bias' has shape [5]");
    }

    [Fact]
    public void ModelIsOptionalForWeightsThatCarryTheirConfigAndModelWins()
    {
        string weights = SaveWeights("self.safetensors", _ => true, embedConfig: true);
        string latents = _dir.File("l.safetensors");
        AssertOk(CliRunner.Run("encode", "--weights", weights, "--device", "cpu", "--input", _images, "--output", latents));
        Assert.Equal($"embedded in {weights}", Safetensors.ReadHeader(latents).Metadata["model"]);
        AssertOk(CliRunner.Run("decode", "--weights", weights, "--device", "cpu", "--input", latents, "--output", _dir.File("d.safetensors")));
        AssertOk(CliRunner.Run("reconstruct", "--weights", weights, "--device", "cpu", "--input", _images, "--output", _dir.File("r")));

        // An embedded config that does not fit the tensors: --model overrides it.
        string lying = _dir.File("lying.safetensors");
        var otherConfig = AutoencoderConfig.Preset("S", embedDim: 4);
        Safetensors.Save(lying, _model.state_dict(), new Dictionary<string, string> { [ModelConfigJson.MetadataKey] = ModelConfigJson.Write(otherConfig) });
        var r = CliRunner.Run("encode", "--weights", lying, "--device", "cpu", "--input", _images, "--output", _dir.File("x.safetensors"));
        Assert.NotEqual(0, r.ExitCode);
        AssertOk(CliRunner.Run("encode", "--model", _conf, "--weights", lying, "--device", "cpu", "--input", _images, "--output", _dir.File("x.safetensors")));
    }

    [Fact]
    public void WeightsWithoutConfigAndNoModelSayToPassModel()
    {
        string weights = SaveWeights("bare.safetensors", _ => true, embedConfig: false);
        var r = CliRunner.Run("encode", "--weights", weights, "--device", "cpu", "--input", _images, "--output", _dir.File("x.safetensors"));
        AssertOneLineError(r, weights, "no model config", "pass --model");
    }

    [Fact]
    public void ConvertImportsTheTorchCheckpointAndTheResultEncodesWithoutModel()
    {
        string conf = _dir.File("lightning.conf");
        File.WriteAllText(conf, LightningConf);
        string output = _dir.File("imported.safetensors");

        var r = CliRunner.Run("convert", Fixture("tiny-lightning.ckpt"), output);
        AssertOneLineError(r, "tiny-lightning.ckpt", "pass --model");

        r = CliRunner.Run("convert", Fixture("tiny-lightning.ckpt"), output, "--model", conf);
        AssertOk(r);
        Assert.Contains("hyper_parameters", r.Out);   // reported as not read
        var expected = Safetensors.Load(Fixture("tiny-lightning.safetensors"));
        var actual = Safetensors.Load(output);
        Assert.Equal(expected.Keys, actual.Keys);   // file order kept
        foreach (var (k, e) in expected)
        {
            Assert.Equal(e.dtype, actual[k].dtype);
            Assert.True(e.bytes.SequenceEqual(actual[k].bytes), k);
        }
        var meta = Safetensors.ReadHeader(output).Metadata;
        Assert.Equal("7", meta["litevae.step"]);

        // The output names its model: encode needs no --model (dct_levels 1: any even size).
        AssertOk(CliRunner.Run("encode", "--weights", output, "--device", "cpu", "--input", _images, "--output", _dir.File("l.safetensors")));

        // --only-model keeps the autoencoder's own keys.
        string onlyModel = _dir.File("only.safetensors");
        AssertOk(CliRunner.Run("convert", Fixture("tiny-lightning.ckpt"), onlyModel, "--model", conf, "--only-model"));
        var kept = Safetensors.ReadHeader(onlyModel).Entries.Select(e => e.Name).ToList();
        Assert.Equal(expected.Keys.Where(k => k.Split('.')[0] is "encoder" or "decoder" or "quantizer"), kept);

        // A config that does not fit is an error naming a key.
        r = CliRunner.Run("convert", Fixture("tiny-lightning.ckpt"), _dir.File("x.safetensors"), "--model", _conf);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("encoder.", r.Error);
    }

    [Fact]
    public void ConvertExportsACheckpointDirectoryWithEmaAndDiscriminator()
    {
        string step = Path.Combine(_dir.Path, "run", "checkpoints");
        using var state = new CheckpointSnapshot(new TrainerState { Step = 42 }, TinyModel.Conf);
        var meta = new Dictionary<string, string> { [ModelConfigJson.MetadataKey] = ModelConfigJson.Write(_model.Config) };
        var model = _model.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.clone())).ToList();
        var ema = _model.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.mul(0.5))).ToList();
        using var discWeight = randn(8, 3, 4, 4);
        var disc = new List<KeyValuePair<string, Tensor>> { new("loss.discriminator.main.0.weight", discWeight.clone()) };
        state.AddFile(new SnapshotFile("model.safetensors", model, meta), []);
        state.AddFile(new SnapshotFile("ema.safetensors", ema, meta), []);
        state.AddFile(new SnapshotFile("discriminator.safetensors", disc, meta), []);
        string dir = CheckpointStore.Write(step, state, new RetentionPolicy());

        string ckpt = _dir.File("out.ckpt");
        AssertOk(CliRunner.Run("convert", dir, ckpt));
        using var back = LightningCheckpoint.Read(ckpt);
        Assert.Equal(42, back.GlobalStep);
        Assert.Equal(meta[ModelConfigJson.MetadataKey], back.ModelJson);
        foreach (var (k, v) in model)
            Assert.True(Same(back.StateDict[k], v), k);
        Assert.True(Same(back.StateDict["loss.discriminator.main.0.weight"], discWeight));
        // LitEma names: the key under the part, dots removed.
        var emaKey = ema.First(kv => kv.Key.StartsWith("decoder.")).Key;
        string litEma = "decoder_ema." + emaKey["decoder.".Length..].Replace(".", "");
        Assert.True(Same(back.StateDict[litEma], ema.First(kv => kv.Key == emaKey).Value), litEma);
        Assert.Equal(model.Count * 2 + 1, back.StateDict.Count);
    }

    [Fact]
    public void LatentStatsFactorIsOneOverTheStdOfTheSameSamplesAndEncodeUsesIt()
    {
        string weights = SaveWeights("w.safetensors", _ => true, embedConfig: false);
        var r = CliRunner.Run("latent-stats", "--weights", weights, "--model", _conf, "--data", _images, "--images", "3",
            "--resolution", "32", "--batch", "2", "--seed", "5", "--device", "cpu", "--write", "--workers", "1");
        AssertOk(r);
        var meta = Safetensors.ReadHeader(weights).Metadata;
        double factor = double.Parse(meta[LatentStatistics.ScaleFactorKey], System.Globalization.CultureInfo.InvariantCulture);
        double shift = double.Parse(meta[LatentStatistics.ShiftFactorKey], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(meta.ContainsKey(ModelConfigJson.MetadataKey));   // --write also made the file self-describing

        // The same samples, drawn here: the first three images in name order, batches of two, one CPU generator.
        using var x = Input();
        using var gen = new Generator(5);
        var samples = new List<Tensor>();
        using (no_grad())
            foreach (var (start, n) in new[] { (0L, 2L), (2L, 1L) })
            {
                using var q = _model.Encode(x.narrow(0, start, n));
                samples.Add(q.Sample(gen));
            }
        using var all = cat(samples, 0).to(ScalarType.Float64);
        double std = all.flatten().std().item<double>();
        Assert.Equal(1.0 / std, factor, 1e-9 * factor);
        Assert.Equal(all.mean().item<double>(), shift, 1e-9);
        foreach (var s in samples) s.Dispose();

        // encode reports the stored factor, and --scaled applies it; decode undoes it.
        string plain = _dir.File("plain.safetensors"), scaled = _dir.File("scaled.safetensors");
        r = CliRunner.Run("encode", "--weights", weights, "--device", "cpu", "--input", _images, "--output", plain);
        AssertOk(r);
        Assert.Contains("latent scale factor", r.Out);
        AssertOk(CliRunner.Run("encode", "--weights", weights, "--device", "cpu", "--input", _images, "--output", scaled, "--scaled"));
        using var m0 = Safetensors.Load(plain)["mean"];
        using var m1 = Safetensors.Load(scaled)["mean"];
        Assert.True(m1.allclose(m0 * factor, rtol: 1e-6, atol: 1e-7));
        string d0 = _dir.File("d0.safetensors"), d1 = _dir.File("d1.safetensors");
        AssertOk(CliRunner.Run("decode", "--weights", weights, "--device", "cpu", "--input", plain, "--output", d0));
        AssertOk(CliRunner.Run("decode", "--weights", weights, "--device", "cpu", "--input", scaled, "--output", d1));
        using var i0 = Safetensors.Load(d0)["images"];
        using var i1 = Safetensors.Load(d1)["images"];
        Assert.True(i1.allclose(i0, rtol: 1e-4, atol: 1e-5));
    }
}
