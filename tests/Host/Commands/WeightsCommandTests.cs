using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Commands;

/// <summary>`litevae weights convert` and `litevae weights list`, run through the real entry point.</summary>
public sealed class WeightsCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"litevae-weights-cli-{Guid.NewGuid():N}");

    public WeightsCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Fixture(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine([dir.FullName, "tests", "fixtures", .. parts]);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(Path.Combine(parts));
    }

    [Theory]
    [InlineData("legacy.pth")]
    [InlineData("zip.pth")]
    public void ConvertWritesTheSameTensorsAsSafetensors(string file)
    {
        string src = Fixture("pth", file), dst = Path.Combine(_dir, "out.safetensors");
        Assert.Equal(0, Program.Main(["weights", "convert", src, dst]));
        var expected = PyTorchFile.Load(src);
        var written = Safetensors.Load(dst);
        Assert.Equal(expected.Keys.Order(), written.Keys.Order());
        foreach (var (k, t) in expected)
        {
            Assert.Equal(t.dtype, written[k].dtype);
            Assert.True(t.equal(written[k]).all().item<bool>(), k);
        }
        Assert.Equal(file, Safetensors.ReadHeader(dst).Metadata["converted_from"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void ConvertRefusesPickledCodeAndExistingOutputs()
    {
        string dst = Path.Combine(_dir, "out.safetensors");
        Assert.Equal(1, Program.Main(["weights", "convert", Fixture("pth", "evil.pth"), dst]));
        Assert.False(File.Exists(dst));
        File.WriteAllText(dst, "keep me");
        Assert.Equal(1, Program.Main(["weights", "convert", Fixture("pth", "zip.pth"), dst]));
        Assert.Equal("keep me", File.ReadAllText(dst));
        Assert.Equal(0, Program.Main(["weights", "convert", Fixture("pth", "zip.pth"), dst, "--force"]));
    }

    [Fact]
    public void ListShowsWhatIsMissingAndWhereToGetIt()
    {
        File.Copy(Fixture("perceptual", "lpips-v0.1-vgg.formula.pth"), Path.Combine(_dir, "lpips-v0.1-vgg.pth"));
        var previous = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try { Assert.Equal(0, Program.Main(["weights", "list", "--weights-dir", _dir])); }
        finally { Console.SetOut(previous); }
        string text = captured.ToString();
        Assert.Contains("found    lpips-v0.1-vgg.pth", text);
        Assert.Contains("missing  vgg16-397923af.pth", text);
        Assert.Contains("https://download.pytorch.org/models/vgg16-397923af.pth", text);
        Assert.Contains("4 file(s) missing", text);
    }
}
