using LiteVae.Model.Discriminators;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>Parameter counts (construction only) against the reference numbers of spec 7 and 13.</summary>
public class DiscriminatorSizeTests
{
    [Fact]
    public void PatchGanHasTheReferenceParameterCount()
    {
        using var d = new PatchGanDiscriminator(new PatchGanConfig());
        Assert.Equal(2_765_633, MacCounter.Parameters(d));
    }

    [Fact]
    public void PatchGanWithoutBatchNormDropsOnlyTheBatchNormParameters()
    {
        // BN affine params: 2 x (128 + 256 + 512); the middle convs stay bias-free (reference pitfall).
        using var d = new PatchGanDiscriminator(new PatchGanConfig(UseBn: false));
        Assert.Equal(2_765_633 - 2 * (128 + 256 + 512), MacCounter.Parameters(d));
    }

    [Theory]
    [InlineData("S", 2_757_075)]
    [InlineData("M", 11_020_707)]
    [InlineData("L", 44_067_651)]
    public void UNetGanHasTheReferenceParameterCount(string preset, long expected)
    {
        using var d = new UNetGanDiscriminator(UNetGanConfig.Preset(preset), initialize: false);
        Assert.Equal(expected, MacCounter.Parameters(d));
    }

    [Theory]
    [InlineData("S", 2_758_356)]
    [InlineData("M", 11_025_828)]
    [InlineData("L", 44_088_132)]
    public void UNetGanWithAttentionAt64HasTheReferenceParameterCount(string preset, long expected)
    {
        var config = UNetGanConfig.Preset(preset) with { Attention = [64] };
        using var d = new UNetGanDiscriminator(config, initialize: false);
        Assert.Equal(expected, MacCounter.Parameters(d));
    }

    [Fact]
    public void GigaGanReferenceConfigurationHas14378276Parameters()
    {
        using var d = new GigaGanDiscriminator(new GigaGanConfig());
        Assert.Equal(14_378_276, MacCounter.Parameters(d));
    }

    [Fact]
    public void GigaGanWithBatchNormHas14388452Parameters()
    {
        using var d = new GigaGanDiscriminator(new GigaGanConfig(UseBn: true));
        Assert.Equal(14_388_452, MacCounter.Parameters(d));
    }

    [Fact]
    public void GigaGanWithMsioAddsAPredictorAndSkipPerLevel()
    {
        // Levels 1-5 (64, 128, 256, 256, 256 channels) each gain a predictor (3 c^2 + c + c + 1) and a
        // skip (c + 1): 654,154 more than the reference configuration.
        using var d = new GigaGanDiscriminator(new GigaGanConfig(Msio: true));
        long extra = new long[] { 64, 128, 256, 256, 256 }.Sum(c => 3 * c * c + c + (c + 1) + (c + 1));
        Assert.Equal(654_154, extra);
        Assert.Equal(14_378_276 + extra, MacCounter.Parameters(d));
    }

    [Fact]
    public void GigaGanWithMsioAndBatchNormMatchesTheSpecs15_05M()
    {
        using var d = new GigaGanDiscriminator(new GigaGanConfig(Msio: true, UseBn: true));
        Assert.InRange(MacCounter.Parameters(d), 15_045_000, 15_055_000);
    }

    [Fact]
    public void NullDiscriminatorHasAtMostTheDummyParameter()
    {
        using var none = new NullDiscriminator(new NullDiscriminatorConfig());
        using var dummy = new NullDiscriminator(new NullDiscriminatorConfig(DummyParam: true));
        Assert.Equal(0, MacCounter.Parameters(none));
        Assert.Equal(["dummy"], dummy.state_dict().Keys);
        using var x = zeros(2, 3, 8, 8);
        Assert.Empty(dummy.Logits(x));
    }
}
