using LiteVae.Model.Checkpoints;

namespace LiteVae.Model.Tests.Checkpoints;

public sealed class RunDirectoryTests
{
    [Fact]
    public void Names_and_paths_follow_the_documented_layout()
    {
        var started = new DateTime(2026, 11, 25, 9, 8, 7);
        Assert.Equal("20261125-090807_phase-a-128_bf16", RunDirectory.NewName("phase a/128", "bf16", started));
        Assert.Equal("20261125-090807_run_fp32", RunDirectory.NewName(" / ", "fp32", started));
        Assert.Equal("step-00000042", RunDirectory.StepName(42));
        Assert.Equal(42, RunDirectory.StepOf("/runs/x/eval/step-00000042.json"));
        Assert.Equal(42, RunDirectory.StepOf("/runs/x/checkpoints/step-00000042/"));
        Assert.Null(RunDirectory.StepOf("/runs/x/checkpoints/last"));
        Assert.Equal("/runs/x", RunDirectory.OfCheckpoint("/runs/x/checkpoints/step-00000042"));
        Assert.Equal(Path.Combine("/runs/x", "tb"), RunDirectory.TensorBoardOf("/runs/x"));
    }
}
