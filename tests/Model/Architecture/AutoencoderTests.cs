using LiteVae.Model.Checkpoints;
using LiteVae.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Architecture;

public class AutoencoderTests
{
    [Fact]
    public void ShapesFollowTheDownsamplingFactor()
    {
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var _ = no_grad();
        using var x = rand(2, 3, 32, 48) * 2 - 1;
        using var q = model.Encode(x);
        Assert.Equal(new long[] { 2, 4, 4, 6 }, q.Mean.shape);
        Assert.Equal(new long[] { 2, 4, 4, 6 }, q.LogVar.shape);
        using var y = model.Decode(q.Mean);
        Assert.Equal(x.shape, y.shape);
        using var r = model.call(x);
        Assert.Equal(x.shape, r.shape);
    }

    [Fact]
    public void ImagesThatAreNotMultiplesOfEightGetAClearError()
    {
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var x = zeros(1, 3, 32, 30);
        var e = Assert.Throws<ArgumentException>(() => model.Encode(x).Dispose());
        Assert.Contains("multiples of 8", e.Message);
        using var gray = zeros(1, 1, 32, 32);
        Assert.Contains("N x 3 x H x W", Assert.Throws<ArgumentException>(() => model.Encode(gray).Dispose()).Message);
        using var z = zeros(1, 5, 4, 4);
        Assert.Contains("N x 4 x h x w", Assert.Throws<ArgumentException>(() => model.Decode(z)).Message);
    }

    [Fact]
    public void SafetensorsRoundTripReproducesTheModel()
    {
        string path = Path.Combine(Path.GetTempPath(), $"litevae-ae-{Guid.NewGuid():N}.safetensors");
        try
        {
            manual_seed(1);
            using var a = new LiteAutoencoder(TinyModels.Config(useQuant: true));
            Safetensors.Save(path, a.state_dict());
            manual_seed(2);
            using var b = new LiteAutoencoder(TinyModels.Config(useQuant: true));
            var tensors = Safetensors.Load(path);
            var report = StateDict.Load(b, tensors, path);
            Assert.Equal(a.state_dict().Count, report.Loaded.Count);
            using var _ = no_grad();
            using var x = rand(1, 3, 32, 32) * 2 - 1;
            using var qa = a.Encode(x);
            using var qb = b.Encode(x);
            Assert.True(qa.Mean.equal(qb.Mean).all().item<bool>());
            using var ya = a.Decode(qa.Mean);
            using var yb = b.Decode(qb.Mean);
            Assert.True(ya.equal(yb).all().item<bool>());
            foreach (var t in tensors.Values) t.Dispose();
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void StrictLoadNamesTheMissingKeyAndLeavesTheModelUntouched()
    {
        using var model = new LiteAutoencoder(TinyModels.Config());
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        weights.Remove("decoder.conv_norm.gain");
        using (no_grad()) weights["decoder.conv_out.bias"].fill_(123f);
        var e = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(model, weights, "w.safetensors"));
        Assert.Contains("w.safetensors", e.Message);
        Assert.Contains("missing: decoder.conv_norm.gain", e.Message);
        Assert.NotEqual(123f, model.state_dict()["decoder.conv_out.bias"][0].item<float>());
    }

    [Fact]
    public void Bf16ModelRunsAndStaysCloseToFp32()
    {
        manual_seed(4);
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var _ = no_grad();
        using var x = rand(1, 3, 32, 32) * 2 - 1;
        using var q32 = model.Encode(x);
        using var y32 = model.Decode(q32.Mean);
        model.to(bfloat16);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        // fp32 images go in: the DWT runs in fp32 and casts its levels to the model's dtype.
        using var q16 = model.Encode(x);
        Assert.Equal(ScalarType.BFloat16, q16.Mean.dtype);
        using var y16 = model.Decode(q16.Mean);
        Assert.Equal(ScalarType.BFloat16, y16.dtype);
        using var y16FromFp32Latent = model.Decode(q32.Mean); // fp32 latents are cast to the model's dtype
        Assert.Equal(ScalarType.BFloat16, y16FromFp32Latent.dtype);
        TensorAssert.RelativeClose(q32.Mean, q16.Mean, 0.1, "bf16 mean");
        TensorAssert.RelativeClose(y32, y16, 0.1, "bf16 decode");
    }

    [Fact]
    public void EveryParameterReceivesAGradient()
    {
        manual_seed(6);
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var x = rand(2, 3, 32, 32) * 2 - 1;
        var (recon, posterior) = model.Reconstruct(x);
        using (recon)
        using (posterior)
        using (var kl = posterior.Kl().mean())
        using (var loss = (recon - x).abs().mean() + 1e-3 * kl)
            loss.backward();
        var dead = model.named_parameters().Where(p => p.parameter.grad is null || p.parameter.grad.abs().sum().item<float>() == 0)
            .Select(p => p.name).ToList();
        Assert.Empty(dead);
    }
}
