using LiteVae.Host.Config;
using LiteVae.Host.Tests.Support;
using LiteVae.Model.Configs;

namespace LiteVae.Host.Tests.Config;

public class ModelConfigBinderTests
{
    private const string Tiny = """
        model {
          embed_dim = 4
          use_quant = false
          encoder { extractor_channels = 8, extractor_mult = [1, 2], extractor_resblocks = 1,
                    aggregate_channels = 8, aggregate_mult = [1, 2], aggregate_resblocks = 1 }
          decoder { channels = 8, channel_mult = [1, 1, 2, 2], num_res_blocks = 0 }
        }
        """;

    private static HoconFile Parse(string text, params string[] overrides) => HoconFile.Parse(text, "test.conf", overrides);

    [Theory]
    [InlineData("s")]
    [InlineData("b")]
    [InlineData("m")]
    [InlineData("l")]
    public void ShippedPresetFilesBindToThePresets(string preset)
    {
        var config = ModelConfigBinder.Bind(HoconFile.Load(RepoPaths.Configs("model", $"litevae-{preset}-f8c12.conf")));
        Assert.Equal(AutoencoderConfig.Preset(preset, 12), config);
        Assert.Equal(EncoderConfig.Preset(preset), config.Encoder);
        Assert.Equal(DecoderConfig.Reference(12), config.Decoder);
        Assert.False(config.UseQuant);
        Assert.Equal(24, config.EncoderOutChannels);
    }

    [Fact]
    public void EveryShippedModelFileParses()
    {
        foreach (var path in Directory.GetFiles(RepoPaths.Configs("model"), "*.conf"))
        {
            var file = HoconFile.Load(path);
            if (ModelConfigBinder.HasEncoder(file)) ModelConfigBinder.BindEncoder(file, 24);
            if (ModelConfigBinder.HasDecoder(file)) ModelConfigBinder.BindDecoder(file, 12);
        }
    }

    [Fact]
    public void DefaultsFillInChannelsLevelsAndDropout()
    {
        var c = ModelConfigBinder.Bind(Parse(Tiny));
        Assert.Equal(3, c.Encoder.InChannels);
        Assert.Equal(3, c.Encoder.DctLevels);
        Assert.Equal(3, c.Decoder.OutChannels);
        Assert.Equal(0.0, c.Decoder.Dropout);
        Assert.Equal(4, c.Decoder.ZChannels);
    }

    [Theory]
    [InlineData("model.encoder.extractor_channels = 12", "key 'model.encoder.extractor_mult'", "divisible by the 8 GroupNorm groups")]
    [InlineData("model.encoder.extractor_chanels = 16", "unknown key 'model.encoder.extractor_chanels' (did you mean 'model.encoder.extractor_channels'?)", "Known keys")]
    [InlineData("model.decoder.channel_mult = [1, 2]", "key 'model.decoder.channel_mult'", "the encoder downsamples by 8")]
    [InlineData("model.decoder.z_channels = 12", "key 'model.decoder.z_channels'", "must equal model.embed_dim (4)")]
    [InlineData("model.encoder.latent_dim = 4", "key 'model.encoder.latent_dim'", "derived encoder output width 8")]
    [InlineData("model.decoder.dropout = 1.5", "key 'model.decoder.dropout'", "[0, 1)")]
    [InlineData("model.embed_dim = 0", "key 'model.embed_dim'", "")]
    [InlineData("model.encoder.extractor_mult = fast", "key 'model.encoder.extractor_mult'", "wrong type")]
    public void BadValuesNameTheFileAndTheKey(string patch, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfigBinder.Bind(Parse(Tiny, patch)));
        Assert.StartsWith("test.conf", e.Message);
        Assert.Contains(key, e.Message);
        Assert.True(e.Message.Contains(problem), e.Message);
    }

    [Fact]
    public void MissingRequiredKeyIsNamed()
    {
        var text = Tiny.Replace("aggregate_resblocks = 1 ", "");
        var e = Assert.Throws<ConfigException>(() => ModelConfigBinder.Bind(Parse(text)));
        Assert.Equal("test.conf: required key 'model.encoder.aggregate_resblocks' is missing.", e.Message);
    }

    [Fact]
    public void UseQuantMakesTheEncoderEmitEmbedDimChannels()
    {
        var c = ModelConfigBinder.Bind(Parse(Tiny, "model.use_quant = true", "model.encoder.latent_dim = 4"));
        Assert.True(c.UseQuant);
        Assert.Equal(4, c.EncoderOutChannels);
    }
}
