using LiteVae.Host.Terminal;

namespace LiteVae.Host.Tests.Terminal;

public sealed class ConsoleProgressTests
{
    private TimeSpan _now;

    private ConsoleProgress Make(StringWriter w, bool interactive) =>
        new(w, interactive, TimeSpan.FromSeconds(30), () => _now);

    [Fact]
    public void TerminalRedrawsOneLineInPlaceAtMostFourTimesASecond()
    {
        var w = new StringWriter();
        var p = Make(w, interactive: true);
        p.Report("step 1/10");
        _now = TimeSpan.FromMilliseconds(100);
        p.Report("step 2/10");                 // too soon: held back
        _now = TimeSpan.FromMilliseconds(300);
        p.Report("step 3/10");
        _now = TimeSpan.FromMilliseconds(310);
        p.Report("step 4/10");                 // held back, shown by Complete
        p.Complete();
        Assert.Equal("\rstep 1/10\u001b[K\rstep 3/10\u001b[K\rstep 4/10\u001b[K\n", w.ToString().Replace("\r\n", "\n"));
    }

    [Fact]
    public void MessagesGoAboveTheLiveLineWhichIsRedrawn()
    {
        var w = new StringWriter { NewLine = "\n" };
        var p = Make(w, interactive: true);
        p.Report("step 1/10");
        p.Message("checkpoint step-1 saved");
        p.Complete();
        Assert.Equal("\rstep 1/10\u001b[K\r\u001b[Kcheckpoint step-1 saved\nstep 1/10\n", w.ToString());
    }

    [Fact]
    public void LinesWrittenByOtherCodeGoAboveTheLiveLineWholeAndInOrder()
    {
        var w = new StringWriter { NewLine = "\n" };
        var p = Make(w, interactive: true);
        var other = p.LinesAbove();
        other.NewLine = "\n";
        p.Report("step 1/10");
        other.Write("eval of step-1: ");
        other.WriteLine("PSNR 15.2 dB");     // one line, written in two pieces
        other.WriteLine("report: eval/step-1.json");
        p.Complete();
        Assert.Equal("\rstep 1/10\u001b[K" +
                     "\r\u001b[Keval of step-1: PSNR 15.2 dB\nstep 1/10" +
                     "\r\u001b[Kreport: eval/step-1.json\nstep 1/10\n", w.ToString());
    }

    [Fact]
    public void RedirectedOutputGetsPlainLinesAtTheLogInterval()
    {
        var w = new StringWriter { NewLine = "\n" };
        var p = Make(w, interactive: false);
        for (int s = 1; s <= 100; s++)
        {
            _now = TimeSpan.FromSeconds(s);     // one step per second, a line every 30 s
            p.Report($"step {s}/100");
        }
        p.Report("eval done", force: true);
        p.Complete();
        Assert.Equal("step 1/100\nstep 31/100\nstep 61/100\nstep 91/100\neval done\n", w.ToString());
        Assert.DoesNotContain('\r', w.ToString());
        Assert.DoesNotContain('\u001b', w.ToString());
    }

    [Fact]
    public void CompleteShowsTheLastHeldBackLineOnce()
    {
        var w = new StringWriter { NewLine = "\n" };
        var p = Make(w, interactive: false);
        p.Report("step 1/3");
        _now = TimeSpan.FromSeconds(1);
        p.Report("step 3/3");
        p.Complete();
        p.Complete();
        Assert.Equal("step 1/3\nstep 3/3\n", w.ToString());
    }
}

public sealed class ProgressTextTests
{
    [Theory]
    [InlineData(0, 100, 10, "?")]
    [InlineData(50, 100, 10, "10s")]          // half done in 10 s: 10 s left
    [InlineData(10, 100, 20, "3m00s")]        // 2 s each, 90 left
    [InlineData(1, 1000, 60, "16h39m")]       // 999 minutes
    [InlineData(1, 10000, 60, "6d22h")]
    [InlineData(100, 100, 5, "0s")]
    public void EtaIsTheRemainingWorkAtTheAverageRate(long done, long total, double elapsedSeconds, string expected) =>
        Assert.Equal(expected, ConsoleProgress.Eta(done, total, TimeSpan.FromSeconds(elapsedSeconds)));
}
