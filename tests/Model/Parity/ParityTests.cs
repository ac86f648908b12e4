using LiteVae.Model.Checkpoints;
using LiteVae.Model.Tests.Support;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Parity;

/// <summary>
/// Every fixture in tests/fixtures/parity: build the model from its config metadata, load its
/// weights strictly (reference key names), and compare the encoder moments and the decoder output
/// with the stored ones to 1e-4 relative (fp32, CPU). The fixtures come from an independent
/// implementation of the spec; fixtures made from the reference code use the same format.
/// </summary>
public class ParityTests
{
    private const double Tolerance = 1e-4;
    private static readonly string[] NonWeights = ["input", "latent", "moments", "decoded"];

    public static TheoryData<string> Fixtures()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(RepoPaths.Fixtures("parity"), "*.safetensors").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void ThereAreFixturesToCheck() => Assert.NotEmpty(Fixtures());

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void MomentsAndDecodedOutputMatchTheFixture(string file)
    {
        string path = RepoPaths.Fixtures("parity", file);
        var header = Safetensors.ReadHeader(path);
        Assert.True(header.Metadata.TryGetValue("config", out var json), $"{file}: no 'config' metadata.");
        var config = FixtureConfig.Parse(json!, path);

        var tensors = Safetensors.Load(path);
        try
        {
            using var model = new LiteAutoencoder(config);
            model.eval();
            var weights = tensors.Where(kv => !NonWeights.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var report = StateDict.Load(model, weights, path, strict: true);
            Assert.True(report.IsExact);

            using var _ = no_grad();
            using (var posterior = model.Encode(tensors["input"]))
            using (var moments = cat([posterior.Mean, posterior.LogVar], 1))
            {
                // The posterior clamps logvar to [-30, 20]; the fixtures stay inside that range.
                TensorAssert.RelativeClose(tensors["moments"], moments, Tolerance, $"{file} moments");
            }
            using var decoded = model.Decode(tensors["latent"]);
            TensorAssert.RelativeClose(tensors["decoded"], decoded, Tolerance, $"{file} decoded");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
