using LiteVae.Host.Training;

namespace LiteVae.Host.Tests.Training;

public sealed class ProgressDisplayTests
{
    [Fact]
    public void OnATerminalTheLineIsRedrawnInPlace()
    {
        var w = new StringWriter();
        var d = new ProgressDisplay(w, inPlace: true);
        d.Progress("step 1/9 long line");
        d.Progress("step 2/9");
        d.Message("eval");
        Assert.Equal("\rstep 1/9 long line\rstep 2/9          \r        \reval" + Environment.NewLine, w.ToString());
    }

    [Fact]
    public void InALogEveryUpdateIsAPlainLine()
    {
        var w = new StringWriter();
        var d = new ProgressDisplay(w, inPlace: false);
        d.Progress("step 1/9");
        d.Message("eval");
        d.Progress("step 2/9");
        Assert.Equal(string.Join(Environment.NewLine, "step 1/9", "eval", "step 2/9", ""), w.ToString());
        Assert.DoesNotContain('\r', w.ToString());
    }
}
