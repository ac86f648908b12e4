using System.Text.Json;
using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Commands;

[Collection(CliCollection.Name)]
public class InspectCommandTests
{
    [Fact]
    public void JsonReportsReferenceParameterCountsAndMacs()
    {
        var r = CliRunner.Run("inspect", "--model", RepoPaths.Configs("model", "litevae-s-f8c12.conf"), "--resolution", "256", "--json");
        Assert.True(r.ExitCode == 0, r.Error);
        using var doc = JsonDocument.Parse(r.Out);
        var parts = doc.RootElement.GetProperty("parts").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        Assert.Equal(977_084, parts["encoder"].GetProperty("parameters").GetInt64());
        Assert.Equal(53_332_642, parts["decoder"].GetProperty("parameters").GetInt64());
        Assert.Equal(977_084 + 53_332_642, doc.RootElement.GetProperty("total").GetProperty("parameters").GetInt64());
        // Spec 3.3 / 5.2: encoder S 5.43 G (README 5.5 G), decoder 323.5 G (README 324 G) at 256 px.
        Assert.InRange(parts["encoder"].GetProperty("macs").GetInt64() / 5.43e9, 0.995, 1.005);
        Assert.InRange(parts["decoder"].GetProperty("macs").GetInt64() / 324e9, 0.98, 1.02);
        Assert.Equal("shape-only", parts["decoder"].GetProperty("method").GetString());
        var modules = parts["decoder"].GetProperty("modules").EnumerateArray().Select(m => m.GetProperty("name").GetString());
        Assert.Equal(["conv_in", "mid", "up", "conv_norm", "conv_out"], modules);
    }

    [Theory]
    [InlineData("disc-patchgan.conf", 2_765_633L, 3.15e9)]
    [InlineData("disc-unetgan-s.conf", 2_757_075L, 2.28e9)]
    [InlineData("disc-gigagan.conf", 14_378_276L, 3.23e9)]
    public void DiscriminatorFilesReportReferenceCounts(string file, long parameters, double macs)
    {
        var r = CliRunner.Run("inspect", "--model", RepoPaths.Configs("model", file), "--resolution", "256", "--json");
        Assert.True(r.ExitCode == 0, r.Error);
        using var doc = JsonDocument.Parse(r.Out);
        var part = doc.RootElement.GetProperty("parts").EnumerateArray().Single();
        Assert.Equal("discriminator", part.GetProperty("name").GetString());
        Assert.Equal(parameters, part.GetProperty("parameters").GetInt64());
        // Spec 7: PatchGAN 3.15 G, UNetGAN-S 2.28 G, GigaGAN README 3.23 G (convs 3.11 G + attention).
        Assert.InRange(part.GetProperty("macs").GetInt64() / macs, 0.98, 1.02);
    }

    [Fact]
    public void TableListsModulesAndTotal()
    {
        var r = CliRunner.Run("inspect", "--model", RepoPaths.Configs("model", "encoder-b.conf"), "--resolution", "64");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Contains("assumed 12", r.Out); // an encoder-only file has no embed_dim
        Assert.Contains("extractors", r.Out);
        var total = r.Out.Split('\n').Single(l => l.StartsWith("total"));
        Assert.Contains("6,623,036", total);
    }

    [Fact]
    public void BadResolutionAndMissingFileAreOneLineErrors()
    {
        var r = CliRunner.Run("inspect", "--model", RepoPaths.Configs("model", "litevae-b-f8c12.conf"), "--resolution", "100");
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.Contains("multiple of 8", r.Error);
        r = CliRunner.Run("inspect", "--model", "no/such.conf");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: no/such.conf: config file not found.", r.Error.Trim());
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("encode")]
    [InlineData("decode")]
    [InlineData("reconstruct")]
    public void EveryVerbHasHelp(string verb)
    {
        var r = CliRunner.Run(verb, "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("--model", r.Out);
    }
}
