using LiteVae.Data.Transforms;
using LiteVae.Host.Config;

namespace LiteVae.Host.Tests.Config;

public sealed class DataConfigBinderTests
{
    private static HoconFile Parse(string text, params string[] overrides) => HoconFile.Parse(text, "exp.conf", overrides);

    [Fact]
    public void Binds_the_documented_example_and_fills_defaults()
    {
        var c = DataConfigBinder.Bind(Parse("""
            data {
              source = "samples/shards/train-{000000..000003}.tar"
              resolution = 128
              batch-size = 8
              decode-workers = 2
              rescale { distribution = uniform, max-ratio = 2.5 }
              flip = false
              max-bad-fraction = 0.02
              decode { max-pixels = 50000000, jpeg-scale-margin = 3 }
            }
            """));
        Assert.Equal(["samples/shards/train-{000000..000003}.tar"], c.Source);
        Assert.Equal(128, c.Resolution);
        Assert.Equal(8, c.BatchSize);
        Assert.Equal(2, c.DecodeWorkers);
        Assert.Equal(RescaleDistribution.Uniform, c.Rescale.Distribution);
        Assert.Equal(2.5, c.Rescale.MaxRatio);
        Assert.False(c.Rescale.Flip);
        Assert.Equal(0.02, c.MaxBadFraction);
        Assert.Equal(50_000_000, c.Decode.MaxPixels);
        Assert.Equal(3.0, c.Decode.JpegScaleMargin);
        Assert.True(c.Decode.JpegScaledDecode);
        Assert.Equal(4, c.Streams);        // defaults
        Assert.Equal(64, c.ShuffleWindow);
        Assert.Equal(RescaleDistribution.LogUniform, DataConfigBinder.Bind(Parse("data { source = x.tar }")).Rescale.Distribution);
    }

    [Fact]
    public void Source_may_be_a_list_and_overrides_apply()
    {
        var c = DataConfigBinder.Bind(Parse("data { source = [a.tar, \"http://h/b-{0..3}.tar\"], seed = 1 }", "data.seed=42", "data.resolution=64"));
        Assert.Equal(["a.tar", "http://h/b-{0..3}.tar"], c.Source);
        Assert.Equal(42, c.Seed);
        Assert.Equal(64, c.Resolution);
    }

    [Theory]
    [InlineData("data { resolution = 128 }", "'source' is missing")]
    [InlineData("data { source = x.tar, resolution = 100 }", "multiple of 8")]
    [InlineData("data { source = x.tar, resolution = abc }", "'resolution' has the wrong type")]
    [InlineData("data { source = x.tar, batch-size = 0 }", "'batch-size' = 0 is out of range")]
    [InlineData("data { source = x.tar, max-bad-fraction = 1.5 }", "'max-bad-fraction'")]
    [InlineData("data { source = x.tar, decode-worker = 2 }", "unknown key 'decode-worker' (did you mean 'decode-workers'?)")]
    [InlineData("data { source = x.tar, rescale { distribution = gaussian } }", "'distribution' = 'gaussian' is not one of")]
    [InlineData("data { source = x.tar, rescale { max-ratio = 0.5 } }", "'max-ratio'")]
    [InlineData("data { source = x.tar, decode { max-pixel = 5 } }", "unknown key 'decode.max-pixel' (did you mean 'decode.max-pixels'?)")]
    [InlineData("data { source = x.tar, batch-queue = 4 }", "key 'batch-queue' no longer exists: it is prefetch-batches now")]
    [InlineData("data { source = [] }", "at least one")]
    [InlineData("other { }", "section 'data' is missing")]
    public void Errors_name_the_file_and_the_key(string text, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => DataConfigBinder.Bind(Parse(text)));
        Assert.Contains("exp.conf", e.Message);
        Assert.Contains(expected, e.Message);
    }
}
