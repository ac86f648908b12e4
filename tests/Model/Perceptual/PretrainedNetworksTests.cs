using LiteVae.Model.Checkpoints;
using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Perceptual;

/// <summary>Finding and loading the weight files; every failure is an "unavailable" with a reason.</summary>
public sealed class PretrainedNetworksTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"litevae-weights-{Guid.NewGuid():N}");

    public PretrainedNetworksTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private WeightFiles Files => new(_folder, "test folder");

    /// <summary>An AlexNet backbone file laid out like torchvision's (features + classifier), with formula weights.</summary>
    private void WriteAlexBackbone(Func<string, Tensor, Tensor>? edit = null)
    {
        using var features = new AlexNetFeatures();
        FormulaWeights.Fill(features);
        var tensors = features.state_dict().ToDictionary(kv => kv.Key, kv => edit is null ? kv.Value : edit(kv.Key, kv.Value));
        using var classifier = ones(10, 9216);
        tensors["classifier.1.weight"] = classifier;
        Safetensors.Save(Path.Combine(_folder, "alexnet-owt-7be5be79.safetensors"), tensors);
    }

    private void CopyAlexHeads() =>
        File.Copy(MetricFixtures.Path("perceptual", "lpips-v0.1-alex.formula.pth"), Path.Combine(_folder, "lpips-v0.1-alex.pth"));

    [Fact]
    public void MissingFilesAreReportedWithNameFolderAndSource()
    {
        var lpips = PretrainedNetworks.LoadLpips(Files, LpipsNet.Vgg);
        Assert.False(lpips.IsAvailable);
        Assert.Contains("vgg16-397923af.pth", lpips.Reason);
        Assert.Contains("lpips-v0.1-vgg.pth", lpips.Reason);
        Assert.Contains(_folder, lpips.Reason);
        Assert.Contains("https://download.pytorch.org/models/vgg16-397923af.pth", lpips.Reason);

        var fid = PretrainedNetworks.LoadFidInception(Files);
        Assert.False(fid.IsAvailable);
        Assert.Contains("pt_inception-2015-12-05-6726825d.pth", fid.Reason);
        Assert.Contains("test folder", fid.Reason);
    }

    [Fact]
    public void LpipsLoadsFromABackboneConversionAndALegacyHeadsFile()
    {
        WriteAlexBackbone();
        CopyAlexHeads();
        var loaded = PretrainedNetworks.LoadLpips(Files, LpipsNet.Alex);
        Assert.True(loaded.IsAvailable, loaded.Reason);
        using var model = loaded.Value!;
        using var reference = new Lpips(LpipsNet.Alex);
        FormulaWeights.Fill(reference, stripPrefix: "net.");
        foreach (var (k, t) in reference.state_dict())
            Assert.True(t.equal(model.state_dict()[k]).all().item<bool>(), k);
    }

    [Fact]
    public void WrongShapesMakeTheNetworkUnavailableNotBroken()
    {
        WriteAlexBackbone((k, t) => k == "features.3.weight" ? zeros(192, 64, 3, 3) : t);
        CopyAlexHeads();
        var loaded = PretrainedNetworks.LoadLpips(Files, LpipsNet.Alex);
        Assert.False(loaded.IsAvailable);
        Assert.Contains("net.features.3.weight", loaded.Reason);
        Assert.Contains("alexnet-owt-7be5be79.safetensors", loaded.Reason);
    }

    [Fact]
    public void CorruptHeadsFileIsReportedNotThrown()
    {
        WriteAlexBackbone();
        var bytes = File.ReadAllBytes(MetricFixtures.Path("perceptual", "lpips-v0.1-alex.formula.pth"));
        File.WriteAllBytes(Path.Combine(_folder, "lpips-v0.1-alex.pth"), bytes[..(bytes.Length / 2)]);
        var loaded = PretrainedNetworks.LoadLpips(Files, LpipsNet.Alex);
        Assert.False(loaded.IsAvailable);
        Assert.Contains("lpips-v0.1-alex.pth", loaded.Reason);
    }

    [Fact]
    public void TorchvisionFileWithTheWrongHashIsRefused()
    {
        File.Copy(MetricFixtures.Path("pth", "legacy.pth"), Path.Combine(_folder, "vgg16-397923af.pth"));
        File.Copy(MetricFixtures.Path("perceptual", "lpips-v0.1-vgg.formula.pth"), Path.Combine(_folder, "lpips-v0.1-vgg.pth"));
        var loaded = PretrainedNetworks.LoadLpips(Files, LpipsNet.Vgg);
        Assert.False(loaded.IsAvailable);
        Assert.Contains("SHA-256", loaded.Reason);
        Assert.Contains("vgg16-397923af.pth", loaded.Reason);
    }

    [Fact]
    public void FidInceptionLoadsAFileWithClassifierAndWithoutStepCounters()
    {
        using var source = new FidInceptionV3();
        var g = new Generator(7);
        using (no_grad())
            foreach (var (k, t) in source.state_dict())
                if (t.is_floating_point()) t.copy_(randn(t.shape, generator: g).mul(0.01).add(k.EndsWith("running_var") ? 1.0 : 0.0));
        var tensors = source.state_dict().Where(kv => !kv.Key.EndsWith("num_batches_tracked")).ToDictionary();
        using var fc = zeros(1008, 2048);
        tensors["fc.weight"] = fc;
        Safetensors.Save(Path.Combine(_folder, "pt_inception-2015-12-05-6726825d.safetensors"), tensors);

        var loaded = PretrainedNetworks.LoadFidInception(Files);
        Assert.True(loaded.IsAvailable, loaded.Reason);
        using var model = loaded.Value!;
        foreach (var (k, t) in source.state_dict())
            if (t.is_floating_point()) Assert.True(t.equal(model.state_dict()[k]).all().item<bool>(), k);
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        Assert.False(model.training);
    }

    [Fact]
    public void DefaultFolderPrefersTheEnvironmentValue()
    {
        Assert.Equal(("/data/w", "$LITEVAE_WEIGHTS"), WeightFiles.DefaultFolder("/data/w", "/home/u"));
        Assert.Equal((Path.Combine("/home/u", ".cache", "litevae", "weights"), "default"), WeightFiles.DefaultFolder(null, "/home/u"));
        Assert.Equal("default", WeightFiles.DefaultFolder("  ", "/home/u").Origin);
    }

    [Fact]
    public void SafetensorsConversionIsPreferredOverThePickle()
    {
        File.WriteAllText(Path.Combine(_folder, "lpips-v0.1-vgg.pth"), "x");
        File.WriteAllText(Path.Combine(_folder, "lpips-v0.1-vgg.safetensors"), "x");
        Assert.EndsWith(".safetensors", Files.Find(PretrainedFile.LpipsVggHeads).Value);
    }
}
