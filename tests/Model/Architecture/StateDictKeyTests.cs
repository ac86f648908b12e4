using LiteVae.Model.Configs;
using LiteVae.Model.Tests.Support;

namespace LiteVae.Model.Tests.Architecture;

/// <summary>State-dict keys and shapes of LiteVAE-B (nz 12) against spec 11.3 and the golden list.</summary>
public class StateDictKeyTests
{
    // Built once: constructing the 60M-parameter model per case would dominate the test time.
    private static readonly Lazy<Dictionary<string, long[]>> Cached = new(() =>
    {
        using var model = new LiteAutoencoder(AutoencoderConfig.Preset("B", 12));
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
    });

    private static Dictionary<string, long[]> Keys() => Cached.Value;

    [Fact]
    public void CountsMatchTheSpec()
    {
        var keys = Keys();
        Assert.Equal(752, keys.Keys.Count(k => k.StartsWith("encoder.", StringComparison.Ordinal)));
        Assert.Equal(138, keys.Keys.Count(k => k.StartsWith("decoder.", StringComparison.Ordinal)));
        Assert.Equal(890, keys.Count);
    }

    [Theory]
    [InlineData("encoder.extractors.0.init_conv.weight", new long[] { 32, 12, 3, 3 })]
    [InlineData("encoder.extractors.2.init_conv.bias", new long[] { 32 })]
    [InlineData("encoder.extractors.1.down_blocks.0.3.conv1.weight", new long[] { 32, 32, 3, 3 })]
    [InlineData("encoder.extractors.1.down_blocks.0.0.norm2.bias", new long[] { 32 })]
    [InlineData("encoder.extractors.1.down_blocks.0.4.weight", new long[] { 64, 32, 1, 1 })]
    [InlineData("encoder.extractors.1.down_blocks.1.4.bias", new long[] { 96 })]
    [InlineData("encoder.extractors.0.mid_block.3.conv2.weight", new long[] { 96, 96, 3, 3 })]
    [InlineData("encoder.extractors.0.up_blocks.0.0.weight", new long[] { 64, 96, 1, 1 })]
    [InlineData("encoder.extractors.0.up_blocks.0.1.residual_conv.weight", new long[] { 64, 128, 1, 1 })]
    [InlineData("encoder.extractors.0.up_blocks.1.4.norm1.weight", new long[] { 32 })]
    [InlineData("encoder.extractors.0.conv_out.weight", new long[] { 12, 32, 1, 1 })]
    [InlineData("encoder.aggregator.init_conv.weight", new long[] { 32, 36, 3, 3 })]
    [InlineData("encoder.aggregator.conv_out.weight", new long[] { 24, 32, 1, 1 })]
    [InlineData("decoder.conv_in.weight", new long[] { 512, 12, 3, 3 })]
    [InlineData("decoder.mid.2.conv1.gain", new long[] { 1 })]
    [InlineData("decoder.mid.0.conv2.scales", new long[] { 512 })]
    [InlineData("decoder.mid.1.conv1.conv.weight", new long[] { 512, 512, 3, 3 })]
    [InlineData("decoder.up.0.block.0.nin_shortcut.weight", new long[] { 128, 256, 1, 1 })]
    [InlineData("decoder.up.1.block.0.nin_shortcut.bias", new long[] { 256 })]
    [InlineData("decoder.up.3.block.2.conv2.conv.bias", new long[] { 512 })]
    [InlineData("decoder.up.1.upsample.conv.weight", new long[] { 256, 256, 3, 3 })]
    [InlineData("decoder.up.3.upsample.conv.bias", new long[] { 512 })]
    [InlineData("decoder.conv_norm.scales", new long[] { 128 })]
    [InlineData("decoder.conv_norm.conv.weight", new long[] { 128, 128, 3, 3 })]
    [InlineData("decoder.conv_out.weight", new long[] { 3, 128, 3, 3 })]
    public void SpecKeysExistWithTheirShapes(string key, long[] shape)
    {
        var keys = Keys();
        Assert.True(keys.ContainsKey(key), $"missing {key}");
        Assert.Equal(shape, keys[key]);
    }

    [Theory]
    [InlineData("encoder.extractors.0.down_blocks.0.0.residual_conv.weight")] // same width: identity residual
    [InlineData("encoder.extractors.0.mid_block.0.residual_conv.weight")]
    [InlineData("decoder.up.0.upsample.conv.weight")]                         // finest level has no upsample
    [InlineData("decoder.up.2.block.0.nin_shortcut.weight")]                  // 512 -> 512
    [InlineData("quantizer.quant_conv.weight")]                               // use_quant false
    [InlineData("encoder.dwt.filters")]                                       // non-persistent buffer
    public void KeysTheReferenceDoesNotHaveAreAbsent(string key) => Assert.DoesNotContain(key, Keys().Keys);

    [Fact]
    public void EveryKeyAndShapeMatchesTheGoldenList()
    {
        var golden = File.ReadAllLines(RepoPaths.Fixtures("keys", "litevae-b-f8c12.txt"))
            .Where(l => !l.StartsWith('#') && l.Length > 0)
            .Select(l => l.Split('\t'))
            .ToDictionary(p => p[0], p => p[1]);
        var ours = Keys().ToDictionary(kv => kv.Key, kv => "[" + string.Join(",", kv.Value) + "]");
        Assert.Equal(890, golden.Count);
        Assert.Empty(golden.Keys.Except(ours.Keys));
        Assert.Empty(ours.Keys.Except(golden.Keys));
        foreach (var (key, shape) in golden)
            Assert.True(shape == ours[key], $"{key}: golden {shape}, ours {ours[key]}");
    }
}
