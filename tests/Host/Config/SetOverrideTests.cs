using LiteVae.Host.Commands;
using LiteVae.Host.Config;

namespace LiteVae.Host.Tests.Config;

/// <summary>--set values as bash hands them over: the README's commands must work as typed.</summary>
public class SetOverrideTests
{
    private static HoconFile Apply(params string[] typed)
    {
        var (_, experiment) = NodeCommand.SplitOverrides(typed);
        return HoconFile.Parse("data { source = \"x.tar\", resolution = 64 }", "test.conf", experiment);
    }

    [Fact]
    public void Shard_pattern_whose_quotes_the_shell_ate_is_read_as_one_string()
    {
        // bash turns --set data.source="/data/in1k/train-{000000..001281}.tar" into this argument.
        var file = Apply("data.source=/data/in1k/train-{000000..001281}.tar");
        Assert.Equal("/data/in1k/train-{000000..001281}.tar", file.String("data.source"));
    }

    [Fact]
    public void Values_written_as_hocon_are_left_as_written()
    {
        Assert.Equal("a-{0..1}.tar", Apply("data.source=\"a-{0..1}.tar\"").String("data.source"));
        Assert.Equal(["a-{0..1}.tar", "b.tar"], Apply("data.source=[\"a-{0..1}.tar\", \"b.tar\"]").StringList("data.source"));
        Assert.Equal(128, Apply("data.resolution=128").Int("data.resolution"));
        Assert.Equal("data.rescale={ max-ratio = 2 }", NodeCommand.QuoteBracePattern("data.rescale={ max-ratio = 2 }"));
    }
}
