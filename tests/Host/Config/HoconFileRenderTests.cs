using LiteVae.Host.Config;

namespace LiteVae.Host.Tests.Config;

public class HoconFileRenderTests
{
    [Fact]
    public void RenderedTextParsesBackToTheSameValues()
    {
        const string text = """
            data { source = "samples/shards/train-{000000..000003}.tar", resolution = 128, flip = true, scale = 0.5 }
            model {
              encoder { extractor_mult = [1, 2, 3] }
              name = "a b:c"
              empty = ""
            }
            """;
        var original = HoconFile.Parse(text, "test.conf");
        var again = HoconFile.Parse(original.Render(), "rendered.conf");
        Assert.Equal("samples/shards/train-{000000..000003}.tar", again.String("data.source"));
        Assert.Equal(128, again.Int("data.resolution"));
        Assert.True(again.Bool("data.flip"));
        Assert.Equal(0.5, again.Double("data.scale"));
        Assert.Equal([1, 2, 3], again.IntList("model.encoder.extractor_mult"));
        Assert.Equal("a b:c", again.String("model.name"));
        Assert.Equal("", again.String("model.empty"));
        Assert.Equal(original.Render(), again.Render());
    }
}
