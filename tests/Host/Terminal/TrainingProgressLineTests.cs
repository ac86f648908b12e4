using LiteVae.Actors.Protocol;
using LiteVae.Host.Terminal;

namespace LiteVae.Host.Tests.Terminal;

public sealed class TrainingProgressLineTests
{
    private static TrainerProtocol.TrainerProgress Progress(long step, bool paused = false) =>
        new("c", "node", step, 12.5, 0.08, 0.031, new Dictionary<string, double> { ["rec"] = 0.25, ["kl"] = 1.5 }, 2, 4, 0, 0, LiteVae.Data.Pipeline.SampleCounts.Empty, 0, paused);

    [Fact]
    public void ShowsStepOfTotalRateLossesDataWaitAndAnEtaFromTheWallClockRate()
    {
        var now = TimeSpan.Zero;
        var line = new TrainingProgressLine(startStep: 100, totalSteps: 1100, clock: () => now);

        now = TimeSpan.FromSeconds(30);   // model building and warm-up: not part of the rate
        string? first = line.Format(Progress(120));
        Assert.Equal("step  120/1100 (10.9%) | 12.5 img/s | kl 1.5000 rec 0.2500 | data wait 3.1%", first);   // no rate yet: no ETA

        now = TimeSpan.FromSeconds(40);   // 80 steps in 10 s since the first report: 8 steps/s
        string? second = line.Format(Progress(200));
        // 900 steps left at 8 steps/s = 112.5 s
        Assert.Equal("step  200/1100 (18.2%) | 12.5 img/s | kl 1.5000 rec 0.2500 | data wait 3.1% | ETA 1m52s", second);
        Assert.Null(line.Format(Progress(200)));   // a repeated report of the same step: nothing new
        Assert.EndsWith("| paused", line.Format(Progress(200, paused: true)));
    }

    [Fact]
    public void AReportBeforeAnyLogWindowShowsNothing()
    {
        var line = new TrainingProgressLine(2, 4, () => TimeSpan.Zero);
        Assert.Null(line.Format(Progress(2) with { Losses = new Dictionary<string, double>(), ImagesPerSecond = 0 }));
    }

    [Fact]
    public void AStepBeyondTheBudgetNeverShowsMoreThanAllOfIt()
    {
        var line = new TrainingProgressLine(0, 10, () => TimeSpan.Zero);
        Assert.StartsWith("step 12/12 (100.0%)", line.Format(Progress(12)));
    }

    [Fact]
    public void Numbers_and_durations_read_well_at_any_scale()
    {
        var losses = new List<KeyValuePair<string, double>> { new("loss", 0.5), new("kl", 1234.5678) };
        Assert.Equal("step  200/1000 (20.0%) | 32.0 img/s | loss 0.5000 kl 1234.5678 | data wait 0.0% | ETA 6m40s",
            TrainingProgressLine.Line(200, 1000, 32, 0, TimeSpan.FromSeconds(400), losses));
        Assert.Equal("3h25m", ConsoleProgress.Duration(TimeSpan.FromMinutes(205)));
        Assert.Equal("1.23e-5", TrainingProgressLine.Number(1.234e-5));
    }
}
