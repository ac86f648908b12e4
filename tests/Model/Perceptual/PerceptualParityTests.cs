using System.Text.Json;
using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Perceptual;

/// <summary>
/// Our VGG16 / AlexNet / FID-Inception / LPIPS against torchvision's modules run by
/// tests/fixtures/tools/make_perceptual_fixtures.py: identical state-dict keys and shapes (so the
/// official weight files load), and the same outputs when both sides hold the same formula weights.
/// </summary>
public class PerceptualParityTests
{
    private static readonly JsonElement Keys = Load("state-dict-keys.json");
    private static readonly JsonElement Outputs = Load("formula-outputs.json");

    private static JsonElement Load(string name) =>
        JsonDocument.Parse(File.ReadAllText(MetricFixtures.Path("perceptual", name))).RootElement;

    private static void AssertKeys(string fixture, nn.Module module, Func<string, bool>? ignore = null)
    {
        var want = Keys.GetProperty(fixture).EnumerateArray()
            .Select(e => $"{e[0].GetString()} [{string.Join(",", e[1].EnumerateArray().Select(x => x.GetInt64()))}]")
            .Where(k => ignore is null || !ignore(k)).Order(StringComparer.Ordinal).ToList();
        var got = module.state_dict().Select(kv => $"{kv.Key} [{string.Join(",", kv.Value.shape)}]")
            .Where(k => ignore is null || !ignore(k)).Order(StringComparer.Ordinal).ToList();
        // Compared as sets: TorchSharp lists all parameters before all buffers, PyTorch module by module.
        Assert.Equal(want, got);
    }

    [Fact]
    public void Vgg16KeysAndShapesMatchTorchvision()
    {
        using var m = new Vgg16Features();
        AssertKeys("vgg16_features", m);
    }

    [Fact]
    public void AlexNetKeysAndShapesMatchTorchvision()
    {
        using var m = new AlexNetFeatures();
        AssertKeys("alexnet_features", m);
    }

    [Fact]
    public void FidInceptionKeysAndShapesMatchTorchvisionInception3()
    {
        using var m = new FidInceptionV3();
        AssertKeys("fid_inception", m);
    }

    [Theory]
    [InlineData(LpipsNet.Vgg, "lpips_vgg")]
    [InlineData(LpipsNet.Alex, "lpips_alex")]
    public void LpipsKeysAreBackbonePlusHeads(LpipsNet net, string fixture)
    {
        using var m = new Lpips(net);
        AssertKeys(fixture, m);
    }

    private static void AssertTaps(Tensor[] taps, JsonElement expected)
    {
        Assert.Equal(expected.GetArrayLength(), taps.Length);
        for (int k = 0; k < taps.Length; k++)
        {
            var e = expected[k];
            Assert.Equal(e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()), taps[k].shape);
            using var flat = taps[k].reshape(-1).to(float64);
            double absSum = e.GetProperty("abs_sum").GetDouble();
            double scale = absSum / flat.numel(); // typical magnitude of one activation
            Assert.Equal(absSum, flat.abs().sum().item<double>(), absSum * 1e-4);
            Assert.Equal(e.GetProperty("sum").GetDouble(), flat.sum().item<double>(), absSum * 1e-4);
            foreach (var s in e.GetProperty("samples").EnumerateArray())
                Assert.Equal(s[1].GetDouble(), flat[s[0].GetInt64()].item<double>(), scale * 1e-3);
        }
    }

    [Fact]
    public void Vgg16FeaturesMatchTorchvisionOnFormulaWeights()
    {
        using var m = new Vgg16Features();
        FormulaWeights.Fill(m);
        using var x = FormulaWeights.X0(1, 32, 32);
        using var _ = no_grad();
        var taps = m.call(x);
        AssertTaps(taps, Outputs.GetProperty("vgg_taps_32"));
        foreach (var t in taps) t.Dispose();
    }

    [Fact]
    public void AlexNetFeaturesMatchTorchvisionOnFormulaWeights()
    {
        using var m = new AlexNetFeatures();
        FormulaWeights.Fill(m);
        using var x = FormulaWeights.X0(1, 64, 64);
        using var _ = no_grad();
        var taps = m.call(x);
        AssertTaps(taps, Outputs.GetProperty("alex_taps_64"));
        foreach (var t in taps) t.Dispose();
    }

    [Theory]
    [InlineData(LpipsNet.Vgg, 32, "lpips_vgg_32")]
    [InlineData(LpipsNet.Alex, 64, "lpips_alex_64")]
    public void LpipsMatchesTheLpipsFormula(LpipsNet net, int size, string fixture)
    {
        using var m = new Lpips(net);
        FormulaWeights.Fill(m, stripPrefix: "net.");
        using var a = FormulaWeights.X0(2, size, size);
        using var b = FormulaWeights.X1(2, size, size);
        using var d = m.call(a, b);
        var want = Outputs.GetProperty(fixture).EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.Equal(new long[] { 2 }, d.shape);
        for (int i = 0; i < 2; i++)
            Assert.Equal(want[i], d[i].item<float>(), want[i] * 1e-4);
    }

    [Fact]
    public void FidInceptionMatchesPytorchFidBlocksOnFormulaWeights()
    {
        using var m = new FidInceptionV3();
        FormulaWeights.Fill(m);
        using var x = FormulaWeights.X0(2, 48, 48);
        using var _ = no_grad();
        using var f = m.call(x).to(float64);
        var want = Outputs.GetProperty("fid_features_48").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(v => v.GetDouble()).ToArray();
        Assert.Equal(new long[] { 2, 2048 }, f.shape);
        var got = f.reshape(-1).data<double>().ToArray();
        double scale = want.Select(Math.Abs).Average();
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= scale * 1e-3, $"feature {i}: want {want[i]}, got {got[i]}");
    }
}
