using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// `litevae launch --cpu 2`: two real trainer processes form one data-parallel group on ports the kernel
/// picks, train to the step budget and all end (exit 0); SIGTERM to the launcher mid-run stops the run
/// cleanly (final checkpoint) and leaves no process behind.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class LaunchTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(4);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-launch-{Guid.NewGuid():N}");

    private string[] Args(long maxSteps) =>
    [
        "launch", "--cpu", "2", "--config", "configs/quickstart.conf", "--run-dir", _runDir,
        "--set", "data.resolution=32", "--set", "data.batch-size=4", "--set", "eval.images=0",
        "--set", $"trainer.max-steps={maxSteps}", "--set", "checkpoint.every-steps=2", "--set", "trainer.log-every=2",
        "--set", "litevae.distributed.settle-s=30", "--set", "litevae.distributed.join-timeout-s=60",
    ];

    [Fact]
    public void Two_cpu_trainers_form_one_group_train_to_the_budget_and_all_exit()
    {
        using var launch = NodeProcess.Start("launch", Args(maxSteps: 6));
        Assert.True(launch.WaitForExit(Limit), $"launch did not end within {Limit}:\n{launch.Output}");
        Assert.True(launch.ExitCode == 0, launch.Output);
        // The trainer node logs its rank (either one: ranks follow registration order); `train` logs warnings only.
        Assert.Matches(@"\[cpu1\] .*joining the data-parallel group \(generation 1\) as rank [01] of 2", launch.Output);
        Assert.Contains("launch: cpu0 exited with code 0", launch.Output);
        Assert.Contains("launch: cpu1 exited with code 0", launch.Output);
        // Two nodes, two ports the kernel chose: neither is a preset's fixed port.
        var ports = System.Text.RegularExpressions.Regex.Matches(launch.Output, @"litevae node \[[^\]]*\] at 127\.0\.0\.1:(\d+)")
            .Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(2, ports.Distinct().Count());
        Assert.DoesNotContain(ports, p => p is >= 4053 and <= 4056);
        Assert.Equal(6, CheckpointStore.List(Path.Combine(_runDir, "checkpoints"))[^1].Step);
        // Both ranks' steps are in the run's record: every sample of the 6 global batches trained once.
        var (code, audit) = NodeProcess.Run(TimeSpan.FromMinutes(1), "audit", _runDir);
        Assert.True(code == 0, audit);
        Assert.Matches(@"whole run\s+24\s+24\s+0\s+0\s+0", audit);   // reached, once, twice, never, bad
    }

    [Fact]
    public void Sigterm_to_the_launcher_stops_the_run_with_a_final_checkpoint()
    {
        using var launch = NodeProcess.Start("launch", Args(maxSteps: 100_000));
        string checkpoints = Path.Combine(_runDir, "checkpoints");
        var until = DateTime.UtcNow + Limit;
        while (!(Directory.Exists(checkpoints) && CheckpointStore.List(checkpoints).Count > 0))
        {
            Assert.False(launch.HasExited, $"launch ended early:\n{launch.Output}");
            Assert.True(DateTime.UtcNow < until, $"no checkpoint within {Limit}:\n{launch.Output}");
            Thread.Sleep(500);
        }
        launch.Signal("TERM");
        Assert.True(launch.WaitForExit(TimeSpan.FromMinutes(2)), $"launch did not stop:\n{launch.Output}");
        Assert.True(launch.ExitCode == 0, launch.Output);
        var stopped = System.Text.RegularExpressions.Regex.Match(launch.Output, @"launch: run stopped at step (\d+)");
        Assert.True(stopped.Success, launch.Output);
        Assert.Equal(long.Parse(stopped.Groups[1].Value), CheckpointStore.List(checkpoints)[^1].Step);
        Assert.Contains("launch: cpu1 exited with code 0", launch.Output);
    }

    public void Dispose()
    {
        if (Directory.Exists(_runDir)) Directory.Delete(_runDir, recursive: true);
    }
}
