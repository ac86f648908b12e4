using System.Text.Json;
using LiteVae.Data.Imaging;
using LiteVae.Host.Config;
using LiteVae.Host.Tests.Support;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Tests.Commands;

/// <summary>encode / decode / reconstruct end to end on a tiny model, and their one-line errors.</summary>
[Collection(CliCollection.Name)]
public sealed class InferenceCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _conf, _weights, _images;
    private readonly LiteAutoencoder _model;

    public InferenceCommandTests()
    {
        _conf = _dir.File("tiny.conf");
        File.WriteAllText(_conf, TinyModel.Conf);
        manual_seed(21);
        _model = new LiteAutoencoder(ModelConfigBinder.Bind(HoconFile.Load(_conf)));
        _model.eval();
        _weights = _dir.File("tiny.safetensors");
        Safetensors.Save(_weights, _model.state_dict());
        _images = Path.Combine(_dir.Path, "images");
        TinyModel.WriteNoisePngs(_images, 32, 24, seed: 5, "b.png", "a.png", "c.png");
        File.WriteAllText(Path.Combine(_images, "notes.txt"), "not an image, ignored");
    }

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
    }

    private string[] Common(params string[] rest) => ["--model", _conf, "--weights", _weights, "--device", "cpu", .. rest];

    /// <summary>The images in sorted file-name order, as the model's input.</summary>
    private Tensor ExpectedInput()
    {
        var names = new[] { "a.png", "b.png", "c.png" };
        var bytes = names.SelectMany(n => ImageFile.Read(Path.Combine(_images, n)).Pixels).ToArray();
        using var pixels = tensor(bytes, [3, 24, 32, 3], ScalarType.Byte);
        return PixelConversion.ToModelInput(pixels);
    }

    [Fact]
    public void EncodeWritesMeanAndLogvarInSortedFileOrder()
    {
        string latents = _dir.File("latents.safetensors");
        var r = CliRunner.Run(["encode", .. Common("--input", _images, "--output", latents, "--batch", "2")]);
        Assert.True(r.ExitCode == 0, r.Error);
        var header = Safetensors.ReadHeader(latents);
        Assert.Equal(["a.png", "b.png", "c.png"], JsonSerializer.Deserialize<string[]>(header.Metadata["inputs"])!);
        var t = Safetensors.Load(latents);
        Assert.Equal(new long[] { 3, 4, 3, 4 }, t["mean"].shape);
        Assert.Equal(ScalarType.Float32, t["logvar"].dtype);
        using var x = ExpectedInput();
        using var _ = no_grad();
        using var q = _model.Encode(x);
        // Batch composition changes float summation order slightly: compare to 1e-5 of the scale.
        Assert.True(t["mean"].allclose(q.Mean, rtol: 1e-5, atol: 1e-5), "mean differs from a direct encode");
        Assert.True(t["logvar"].allclose(q.LogVar, rtol: 1e-5, atol: 1e-5), "logvar differs from a direct encode");
    }

    [Fact]
    public void DecodeWritesPngsNamedAfterTheInputsOrAnImagesTensor()
    {
        string latents = _dir.File("latents.safetensors");
        Assert.Equal(0, CliRunner.Run(["encode", .. Common("--input", _images, "--output", latents)]).ExitCode);

        string folder = _dir.File("decoded");
        var r = CliRunner.Run(["decode", .. Common("--input", latents, "--output", folder, "--batch", "2")]);
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(["a.png", "b.png", "c.png"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        string tensorFile = _dir.File("decoded.safetensors");
        r = CliRunner.Run(["decode", .. Common("--input", latents, "--output", tensorFile)]);
        Assert.True(r.ExitCode == 0, r.Error);
        var images = Safetensors.Load(tensorFile)["images"];
        Assert.Equal(new long[] { 3, 3, 24, 32 }, images.shape);
        using var mean = Safetensors.Load(latents)["mean"];
        using var _ = no_grad();
        using var expected = _model.Decode(mean);
        Assert.True(images.allclose(expected, rtol: 1e-5, atol: 1e-5));

        // The PNG is the clamped, rounded tensor.
        var png = ImageFile.Read(Path.Combine(folder, "b.png"));
        using var pixels = PixelConversion.ToPixels(expected.narrow(0, 1, 1));
        Assert.Equal(pixels.bytes.ToArray(), png.Pixels);
    }

    [Fact]
    public void ReconstructWritesOneImagePerInput()
    {
        var r = CliRunner.Run(["reconstruct", .. Common("--input", Path.Combine(_images, "a.png"), "--output", _dir.File("a-rec.png"))]);
        Assert.True(r.ExitCode == 0, r.Error);
        var img = ImageFile.Read(_dir.File("a-rec.png"));
        Assert.Equal((32, 24), (img.Width, img.Height));

        r = CliRunner.Run(["reconstruct", .. Common("--input", _images, "--output", _dir.File("rec"), "--precision", "bf16")]);
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(3, Directory.GetFiles(_dir.File("rec"), "*.png").Length);
    }

    private static void AssertOneLineError(CliRunner.Result r, params string[] fragments)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.StartsWith("error: ", r.ErrorLines[0]);
        foreach (var f in fragments)
            Assert.Contains(f, r.ErrorLines[0]);
        Assert.DoesNotContain("   at ", r.Error); // no stack trace
    }

    [Fact]
    public void UnreadableImageGivesOneLineNamingTheFile()
    {
        string bad = Path.Combine(_images, "broken.png");
        File.WriteAllText(bad, "this is not a png");
        var r = CliRunner.Run(["encode", .. Common("--input", _images, "--output", _dir.File("x.safetensors"))]);
        AssertOneLineError(r, bad, "not a readable image");
    }

    [Fact]
    public void ImageSizeThatIsNotAMultipleOfEightIsRefused()
    {
        string odd = _dir.File("odd.png");
        ImageFile.WritePng(odd, RgbImage.Create(30, 24));
        var r = CliRunner.Run(["encode", .. Common("--input", odd, "--output", _dir.File("x.safetensors"))]);
        AssertOneLineError(r, odd, "30x24", "multiples of 8");
    }

    [Fact]
    public void WrongShapedLatentGivesOneLineNamingTheFile()
    {
        string latents = _dir.File("wrong.safetensors");
        using (var z = zeros(2, 5, 3, 4))
            Safetensors.Save(latents, [new("mean", z)]);
        var r = CliRunner.Run(["decode", .. Common("--input", latents, "--output", _dir.File("out"))]);
        AssertOneLineError(r, latents, "[2, 5, 3, 4]", "N x 4 x h x w");
    }

    [Fact]
    public void LatentFileWithoutMeanOrZIsRefused()
    {
        string latents = _dir.File("other.safetensors");
        using (var z = zeros(1, 4, 3, 4))
            Safetensors.Save(latents, [new("latents", z)]);
        var r = CliRunner.Run(["decode", .. Common("--input", latents, "--output", _dir.File("out"))]);
        AssertOneLineError(r, latents, "no tensor 'mean' or 'z'", "latents");
    }

    [Fact]
    public void WeightsWithAMissingKeyGiveOneLineNamingTheKey()
    {
        string weights = _dir.File("partial.safetensors");
        Safetensors.Save(weights, _model.state_dict().Where(kv => kv.Key != "decoder.conv_out.bias"));
        var r = CliRunner.Run(["reconstruct", "--model", _conf, "--weights", weights, "--device", "cpu", "--input", _images, "--output", _dir.File("x")]);
        AssertOneLineError(r, weights, "missing: decoder.conv_out.bias");
    }

    [Fact]
    public void MissingWeightsFileAndBadDeviceAreNamed()
    {
        var r = CliRunner.Run(["encode", "--model", _conf, "--weights", _dir.File("none.safetensors"), "--device", "cpu", "--input", _images, "--output", _dir.File("x.safetensors")]);
        AssertOneLineError(r, "none.safetensors", "not found");
        r = CliRunner.Run(["encode", .. Common("--input", _images, "--output", _dir.File("x.safetensors"), "--precision", "fp8")]);
        AssertOneLineError(r, "--precision 'fp8'");
    }
}
