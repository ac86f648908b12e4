using LiteVae.Model.Checkpoints;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

public class SafetensorsTests
{
    private static string TempFile() => Path.Combine(Path.GetTempPath(), $"litevae-st-{Guid.NewGuid():N}.safetensors");

    [Fact]
    public void RoundTripKeepsValuesDtypesShapesAndMetadata()
    {
        string path = TempFile();
        try
        {
            using var a = arange(24, dtype: float32).reshape(2, 3, 4);
            using var b = tensor(new long[] { -5, 7 });
            using var c = linspace(-1, 1, 5).to(bfloat16);
            Safetensors.Save(path, [new("a", a), new("b", b), new("c", c)], new Dictionary<string, string> { ["format"] = "pt" });
            var header = Safetensors.ReadHeader(path);
            Assert.Equal("pt", header.Metadata["format"]);
            var loaded = Safetensors.Load(path);
            Assert.True(loaded["a"].equal(a).all().item<bool>());
            Assert.Equal(new long[] { 2, 3, 4 }, loaded["a"].shape);
            Assert.Equal(ScalarType.Int64, loaded["b"].dtype);
            Assert.True(loaded["b"].equal(b).all().item<bool>());
            Assert.Equal(ScalarType.BFloat16, loaded["c"].dtype);
            Assert.True(loaded["c"].equal(c).all().item<bool>());
            Assert.Equal(0, header.DataStart % 8);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TruncatedFileIsRefusedBeforeAllocation()
    {
        string path = TempFile();
        try
        {
            using var a = ones(100);
            Safetensors.Save(path, [new("a", a)]);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^10]);
            var e = Assert.Throws<InvalidDataException>(() => Safetensors.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("'a'", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void NonSafetensorsFileGetsAClearError()
    {
        string path = TempFile();
        try
        {
            File.WriteAllText(path, "this is not a tensor file at all");
            var e = Assert.Throws<InvalidDataException>(() => Safetensors.ReadHeader(path));
            Assert.Contains("header length", e.Message);
        }
        finally { File.Delete(path); }
    }
}
