using LiteVae.Host.Config;
using LiteVae.Model.Discriminators;

namespace LiteVae.Host.Tests;

public class DiscriminatorConfigBinderTests
{
    private static string ConfigDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "configs", "model");
            if (File.Exists(Path.Combine(candidate, "disc-patchgan.conf")))
                return candidate;
        }
        throw new DirectoryNotFoundException("configs/model not found above " + AppContext.BaseDirectory);
    }

    private static HoconFile Parse(string text) => HoconFile.Parse(text, "test.conf");

    [Theory]
    [InlineData("disc-patchgan.conf", 2_765_633)]
    [InlineData("disc-unetgan-s.conf", 2_757_075)]
    [InlineData("disc-unetgan-m.conf", 11_020_707)]
    [InlineData("disc-unetgan-l.conf", 44_067_651)]
    [InlineData("disc-gigagan.conf", 14_378_276)]
    [InlineData("disc-none.conf", 0)]
    public void ShippedConfigsBindAndBuildTheReferenceSizes(string file, long parameters)
    {
        var config = DiscriminatorConfigBinder.Load(Path.Combine(ConfigDir(), file));
        Assert.Equal(file["disc-".Length..].Split('.', '-')[0], config.Type);
        using var d = DiscriminatorFactory.Create(config, initialize: false);
        Assert.Equal(parameters, d.Module.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void EveryShippedDiscriminatorConfigIsCovered()
    {
        var files = Directory.GetFiles(ConfigDir(), "disc-*.conf").Select(Path.GetFileName).Order();
        Assert.Equal(["disc-gigagan.conf", "disc-none.conf", "disc-patchgan.conf", "disc-unetgan-l.conf", "disc-unetgan-m.conf", "disc-unetgan-s.conf"], files);
    }

    [Fact]
    public void KeysMapToTheRecord()
    {
        var c = (UNetGanConfig)DiscriminatorConfigBinder.Bind(Parse("discriminator { type = unetgan, d_ch = 32, attention_resolutions = [64] }"));
        Assert.Equal(32, c.DCh);
        Assert.Equal([64], c.AttentionResolutions);
        var g = (GigaGanConfig)DiscriminatorConfigBinder.Bind(Parse("discriminator { type = gigagan, msio = true, attn_res_gain = 0.25 }"));
        Assert.True(g.Msio);
        Assert.Equal(0.25, g.AttnResGain);
        Assert.Equal([16, 8], g.AttentionResolutions);
    }

    [Fact]
    public void OverridesApply()
    {
        var path = Path.Combine(ConfigDir(), "disc-patchgan.conf");
        var c = (PatchGanConfig)DiscriminatorConfigBinder.Load(path, ["discriminator.use_bn=false"]);
        Assert.False(c.UseBn);
    }

    [Theory]
    [InlineData("discriminator { type = stylegan }", "'type' = 'stylegan' is not one of")]
    [InlineData("discriminator { type = unetgan }", "required key 'd_ch' is missing")]
    [InlineData("discriminator { type = unetgan, d_ch = 16, attention_resolutions = [100] }", "'discriminator.attention_resolutions' 100 is not one of")]
    [InlineData("discriminator { type = patchgan, ndfs = 64 }", "'discriminator.ndfs' is not a patchgan setting")]
    [InlineData("discriminator { type = patchgan, ndf = lots }", "'ndf' has the wrong type")]
    [InlineData("discriminator { type = gigagan, image_size = 200 }", "'discriminator.image_size' is 200; must be a power of two")]
    [InlineData("model { }", "required section 'discriminator' is missing")]
    public void BadConfigsNameFileAndKey(string text, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => DiscriminatorConfigBinder.Bind(Parse(text)));
        Assert.StartsWith("test.conf", e.Message);
        Assert.Contains(expected, e.Message);
    }
}
