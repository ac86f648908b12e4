using LiteVae.Model;
using LiteVae.Model.Configs;
using LiteVae.Model.Decoder;
using LiteVae.Model.Encoder;

namespace LiteVae.Model.Tests.Architecture;

/// <summary>Parameter counts against the reference numbers of spec 3.3 and 5.2 (construction only).</summary>
public class ParameterCountTests
{
    private static long Count(TorchSharp.torch.nn.Module m) => m.parameters().Sum(p => p.numel());

    [Theory]
    [InlineData("S", 977_084)]
    [InlineData("B", 6_623_036)]
    [InlineData("M", 34_125_596)]
    [InlineData("L", 41_154_172)]
    public void EncoderPresetsMatchTheReferenceCountsForNz12(string preset, long expected)
    {
        using var encoder = new LiteVaeEncoder(EncoderConfig.Preset(preset), 24);
        Assert.Equal(expected, Count(encoder));
    }

    [Theory]
    [InlineData("S", 243_356, 247_016)]
    [InlineData("B", 1_653_932, 1_661_240)]
    [InlineData("M", 10_821_452, 1_661_240)]
    [InlineData("L", 10_821_452, 8_689_816)]
    public void ExtractorAndAggregatorCountsMatchTheSpec(string preset, long extractor, long aggregator)
    {
        var c = EncoderConfig.Preset(preset);
        using var ex = new UNet(12, 12, c.ExtractorChannels, c.ExtractorMult, c.ExtractorResblocks);
        using var agg = new UNet(36, 24, c.AggregateChannels, c.AggregateMult, c.AggregateResblocks);
        Assert.Equal(extractor, Count(ex));
        Assert.Equal(aggregator, Count(agg));
    }

    [Theory]
    [InlineData(12, 53_332_642)]
    [InlineData(4, 53_295_778)]
    public void DecoderMatchesTheReferenceCount(int nz, long expected)
    {
        using var decoder = new LiteVaeDecoder(DecoderConfig.Reference(nz));
        Assert.Equal(expected, Count(decoder));
    }

    [Fact]
    public void SmcParameterCountIsWeightPlusBiasPlusScalesPlusGain()
    {
        using var smc = new SelfModulatedConv2d(5, 7, 3);
        Assert.Equal(7 * 5 * 9 + 7 + 5 + 1, Count(smc));
    }

    [Fact]
    public void AutoencoderIsEncoderPlusDecoderWithoutQuantConvs()
    {
        using var ae = new LiteAutoencoder(AutoencoderConfig.Preset("B"));
        Assert.Equal(6_623_036 + 53_332_642, Count(ae));
    }

    [Fact]
    public void UseQuantAddsTheTwoOneByOneConvsAndNarrowsTheEncoder()
    {
        var config = new AutoencoderConfig(4, true, EncoderConfig.S, DecoderConfig.Reference(4));
        using var ae = new LiteAutoencoder(config);
        var keys = ae.state_dict().Keys.ToList();
        Assert.Contains("quantizer.quant_conv.weight", keys);
        Assert.Equal(new long[] { 8, 4, 1, 1 }, ae.state_dict()["quantizer.quant_conv.weight"].shape);
        Assert.Equal(new long[] { 4, 4, 1, 1 }, ae.state_dict()["quantizer.post_quant_conv.weight"].shape);
        // The encoder emits embed_dim channels (the reference's latent_dim), quant_conv doubles them.
        Assert.Equal(new long[] { 4, 16, 1, 1 }, ae.state_dict()["encoder.aggregator.conv_out.weight"].shape);
    }
}
