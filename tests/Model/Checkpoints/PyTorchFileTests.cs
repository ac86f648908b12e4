using System.Text.Json;
using LiteVae.Model.Checkpoints;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

/// <summary>
/// The restricted reader against files written by PyTorch 1.13 itself
/// (tests/fixtures/tools/make_pth_fixtures.py): both torch.save layouts, shared and strided storages,
/// every common dtype, and a file that tries to run a shell command.
/// </summary>
public class PyTorchFileTests
{
    private static readonly JsonElement Expected =
        JsonDocument.Parse(File.ReadAllText(MetricFixtures.Path("pth", "expected.json"))).RootElement.GetProperty("tensors");

    [Theory]
    [InlineData("zip.pth", "")]
    [InlineData("legacy.pth", "")]
    [InlineData("nested-legacy.pth", "state_dict.")]
    [InlineData("py2-dict-legacy.pth", "")]
    public void ReadsEveryTensorWithPyTorchsValues(string file, string prefix)
    {
        var loaded = PyTorchFile.Load(MetricFixtures.Path("pth", file));
        try
        {
            Assert.Equal(Expected.EnumerateObject().Select(p => prefix + p.Name).Order(), loaded.Keys.Order());
            foreach (var p in Expected.EnumerateObject())
            {
                var t = loaded[prefix + p.Name];
                Assert.Equal(p.Value.GetProperty("dtype").GetString(), DTypeName(t.dtype));
                Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()), t.shape);
                Assert.True(t.is_contiguous());
                var want = p.Value.GetProperty("values").EnumerateArray().Select(x => x.GetDouble()).ToArray();
                using var flat = t.reshape(-1).to(float64);
                var got = flat.data<double>().ToArray();
                Assert.Equal(want.Length, got.Length);
                for (int i = 0; i < want.Length; i++)
                    Assert.Equal(want[i], got[i]);
            }
        }
        finally { foreach (var t in loaded.Values) t.Dispose(); }
    }

    [Fact]
    public void IncludeFilterSkipsOtherTensors()
    {
        var loaded = PyTorchFile.Load(MetricFixtures.Path("pth", "legacy.pth"), k => k.StartsWith("conv."));
        Assert.Equal(new[] { "conv.bias", "conv.weight" }, loaded.Keys.Order());
        foreach (var t in loaded.Values) t.Dispose();
    }

    [Fact]
    public void CodeInThePickleIsRefusedNotRun()
    {
        var e = Assert.Throws<InvalidDataException>(() => PyTorchFile.Load(MetricFixtures.Path("pth", "evil.pth")));
        Assert.Contains("os.system", e.Message);
        Assert.Contains("refusing", e.Message);
    }

    [Theory]
    [InlineData("legacy.pth")]
    [InlineData("zip.pth")]
    public void TruncatedFileGetsOneClearError(string file)
    {
        string path = Path.Combine(Path.GetTempPath(), $"litevae-trunc-{Guid.NewGuid():N}.pth");
        try
        {
            var bytes = File.ReadAllBytes(MetricFixtures.Path("pth", file));
            File.WriteAllBytes(path, bytes[..(bytes.Length - 40)]);
            var e = Assert.ThrowsAny<Exception>(() => PyTorchFile.Load(path));
            Assert.True(e is InvalidDataException, $"{e.GetType().Name}: {e.Message}");
            Assert.Contains(path, e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void NotAWeightsFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"litevae-text-{Guid.NewGuid():N}.pth");
        try
        {
            File.WriteAllText(path, "hello, this is text");
            var e = Assert.Throws<InvalidDataException>(() => PyTorchFile.Load(path));
            Assert.Contains("not a PyTorch weights file", e.Message);
        }
        finally { File.Delete(path); }
    }

    private static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32", ScalarType.Float64 => "float64", ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16", ScalarType.Int64 => "int64", ScalarType.Byte => "uint8",
        ScalarType.Bool => "bool", _ => t.ToString(),
    };
}
