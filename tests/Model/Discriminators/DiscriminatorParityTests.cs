using System.Text.Json;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>
/// Every fixture in tests/fixtures/discriminators (format in its README): built by an independent
/// PyTorch implementation of spec 7 that uses stock torch layers, including
/// torch.nn.utils.spectral_norm. The weights must load strictly under the reference key names, and
/// the logits of a training-mode forward, the spectral-norm vectors it updates, and the logits of
/// a following eval-mode forward must match to 1e-4 relative (fp32, CPU).
/// </summary>
public class DiscriminatorParityTests
{
    private static readonly string[] NonWeightPrefixes = ["input", "logits.", "eval.", "after."];

    public static TheoryData<string> Fixtures()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(FixturePaths.Discriminators, "*.safetensors").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void EveryDiscriminatorKindHasAFixture()
    {
        var kinds = Directory.GetFiles(FixturePaths.Discriminators, "*.safetensors").Select(f => ReadConfig(f).Type).ToHashSet();
        Assert.Equal(["gigagan", "patchgan", "unetgan"], kinds.Order());
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void LogitsAndSpectralNormStateMatchTheFixture(string file)
    {
        string path = Path.Combine(FixturePaths.Discriminators, file);
        var tensors = Safetensors.Load(path);
        using var d = DiscriminatorFactory.Create(ReadConfig(path));
        try
        {
            var weights = tensors.Where(kv => !NonWeightPrefixes.Any(kv.Key.StartsWith)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var report = StateDict.Load(d.Module, weights, path, strict: true);
            Assert.True(report.IsExact, report.Describe());

            var input = tensors["input"];
            d.Module.train();
            var logits = d.Logits(input);
            AssertOutputs(tensors, "logits.", logits, file);

            var state = d.Module.state_dict();
            var after = tensors.Where(kv => kv.Key.StartsWith("after.")).ToList();
            Assert.NotEmpty(after);  // spectral-norm vectors or batch-norm running statistics
            foreach (var (key, expected) in after)
                AssertClose(expected, state[key["after.".Length..]], $"{file} {key}");

            d.Module.eval();
            using (no_grad())
                AssertOutputs(tensors, "eval.logits.", d.Logits(input), file);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private static void AssertOutputs(Dictionary<string, Tensor> tensors, string prefix, IReadOnlyList<Tensor> actual, string file)
    {
        var expected = tensors.Where(kv => kv.Key.StartsWith(prefix)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < actual.Count; i++)
        {
            Assert.Equal(tensors[prefix + i].shape, actual[i].shape);
            AssertClose(tensors[prefix + i], actual[i], $"{file} {prefix}{i}");
        }
    }

    internal static void AssertClose(Tensor expected, Tensor actual, string what, double rel = 1e-4)
    {
        using var e = expected.to(float64);
        using var a = actual.detach().to(float64);
        double scale = Math.Max(e.abs().max().item<double>(), 1e-3);
        double err = (a - e).abs().max().item<double>();
        Assert.True(err <= rel * scale, $"{what}: max |diff| {err:G4} exceeds {rel} x {scale:G4}");
    }

    /// <summary>The fixture's config metadata, read with the HOCON files' key names.</summary>
    internal static DiscriminatorConfig ReadConfig(string path)
    {
        var header = Safetensors.ReadHeader(path);
        using var doc = JsonDocument.Parse(header.Metadata["config"]);
        var c = doc.RootElement;
        int Int(string k) => c.GetProperty(k).GetInt32();
        bool Bool(string k) => c.GetProperty(k).GetBoolean();
        int[] Ints(string k) => [.. c.GetProperty(k).EnumerateArray().Select(e => e.GetInt32())];
        return c.GetProperty("type").GetString() switch
        {
            "patchgan" => new PatchGanConfig(Ndf: Int("ndf"), NLayers: Int("n_layers"), UseBn: Bool("use_bn")),
            "unetgan" => new UNetGanConfig(Int("d_ch"), Ints("attention_resolutions")),
            "gigagan" => new GigaGanConfig(Int("image_size"), Int("base_channels"), Int("max_channels"), Int("conv_blocks"),
                Int("pred_layers"), Ints("attention_resolutions"), Int("head_dim"), c.GetProperty("attn_res_gain").GetDouble(),
                Bool("msio"), Bool("use_bn"), Bool("conv_bias")),
            var t => throw new InvalidDataException($"{path}: unknown discriminator type '{t}'."),
        };
    }
}

internal static class FixturePaths
{
    /// <summary>tests/fixtures/discriminators, found by walking up from the test binaries.</summary>
    public static string Discriminators { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "discriminators");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/fixtures/discriminators not found above " + AppContext.BaseDirectory);
    }
}
