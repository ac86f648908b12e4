using System.Text.RegularExpressions;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// Data-parallel training through the actors, with real `litevae node` processes on loopback (CPU, TCP
/// collectives): a coordinator+trainer node, a data node and a second trainer node form a group of two
/// (the Coordinator hands out ranks and the group addresses); killing the second trainer with SIGKILL makes
/// the survivor abort its communicators, the group re-forms with the survivor (min-trainers 1), and
/// training continues from the last checkpoint; every checkpoint on disk is complete and finite, and the
/// run stops cleanly.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class DataParallelClusterTests : IDisposable
{
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(90), Cli = TimeSpan.FromSeconds(60), Progress = TimeSpan.FromMinutes(2);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-dp-{Guid.NewGuid():N}");
    private readonly List<NodeProcess> _nodes = [];

    private static readonly string[] Experiment =
    [
        "--config", "configs/quickstart.conf",
        // Global batch 4: two ranks of 2 (the experiment's batch is the global batch).
        "--set", "data.resolution=32", "--set", "data.batch-size=4", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
        "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
        "--set", "checkpoint.every-steps=2", "--set", "checkpoint.keep-last=3",
    ];

    private static readonly string[] Group =
    [
        "--set", "litevae.distributed.trainers=2", "--set", "litevae.distributed.min-trainers=1",
        "--set", "litevae.distributed.settle-s=5", "--set", "litevae.distributed.check-weights-every=2",
        "--set", "litevae.distributed.join-timeout-s=30", "--set", "litevae.distributed.operation-timeout-s=30",
    ];

    private string[] NodeArgs(string hocon, int port, IEnumerable<int> seeds, bool coordinator) =>
    [
        "node", "--hocon", $"hocon/{hocon}",
        "--set", $"litevae.node.port={port}",
        "--set", $"litevae.node.seed-nodes=[{string.Join(",", seeds.Select(s => $"\"127.0.0.1:{s}\""))}]",
        "--set", $"litevae.run.run-dir=\"{_runDir}\"",
        "--set", "litevae.coordinator.stale-lease-s=10",
        "--set", "litevae.trainer.min-backoff-s=0.5",
        "--set", "akka.cluster.split-brain-resolver.stable-after=3s",
        "--set", "akka.cluster.failure-detector.acceptable-heartbeat-pause=3s",
        .. Group,
        .. (coordinator ? Experiment : []),
    ];

    private NodeProcess StartNode(string name, string hocon, int port, IEnumerable<int> seeds, bool coordinator = false)
    {
        var n = NodeProcess.Start(name, NodeArgs(hocon, port, seeds, coordinator));
        _nodes.Add(n);
        n.WaitForAddress(Start);
        return n;
    }

    [Fact]
    public void Two_trainer_group_trains_and_reforms_from_the_last_checkpoint_after_kill_9_of_a_rank()
    {
        int pA = NodeProcess.FreePort(), pD = NodeProcess.FreePort(), pT = NodeProcess.FreePort();
        var a = StartNode("coordinator+trainer", "coordinator.conf", pA, [pA, pD], coordinator: true);
        // The second trainer before the data node: the group should form with both (settle-s is the grace).
        var t = StartNode("trainer-2", "trainer-node.conf", pT, [pA]);
        StartNode("data", "data-node.conf", pD, [pA, pT]);
        string cluster = $"127.0.0.1:{pA}";

        WaitFor(() => a.Output.Contains("generation 1 joined: 2 ranks"), "the 2-rank group to form", a);
        long step = WaitForStep(cluster, 2, a);
        Console.WriteLine($"{Elapsed}: 2 ranks at step {step}");
        // Ranks follow registration order, which either trainer may win under load: one node is rank 0 (the
        // leader the data node feeds), the other rank 1, which follows it. Log lines arrive asynchronously.
        WaitFor(() => (a.Output + t.Output).Contains("joining the data-parallel group (generation 1) as rank 1 of 2"), "rank 1 joining", t);
        var follower = t.Output.Contains("as rank 1 of 2") ? t : a;
        var leader = follower == t ? a : t;
        WaitFor(() => leader.Output.Contains("joining the data-parallel group (generation 1) as rank 0 of 2"), "rank 0 joining", leader);
        WaitFor(() => follower.Output.Contains("follows the leader"), "rank 1 following the leader", follower);
        Assert.DoesNotContain("weights differ", a.Output + t.Output);   // checked every 2 steps

        string checkpoints = Path.Combine(_runDir, "checkpoints");
        WaitFor(() => Directory.Exists(checkpoints) && CheckpointStore.List(checkpoints).Count > 0, "a checkpoint", a);
        var before = CheckpointStore.List(checkpoints);
        t.KillHard();
        Console.WriteLine($"{Elapsed}: rank 1 killed; checkpoints {string.Join(", ", before.Select(c => c.Step))}");

        // The survivor aborts, restarts, and a group of one forms and resumes from the last checkpoint.
        WaitFor(() => a.Output.Contains("generation 2 joined: 1 ranks"), "the group to re-form", a);
        var reformed = Regex.Match(a.Output, @"data-parallel group generation 2: .*\(resume from (\S+)\)");
        Assert.True(reformed.Success, a.Output);
        var resumedFrom = CheckpointDir.Open(reformed.Groups[1].Value).State.Step;
        Assert.True(resumedFrom >= before[^1].Step, $"resumed from step {resumedFrom}, but step {before[^1].Step} was on disk before the kill");
        long after = WaitForStep(cluster, resumedFrom + 3, a);
        Console.WriteLine($"{Elapsed}: re-formed from step {resumedFrom}, now at step {after}");
        Assert.True(after > step);

        var (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(2), "stop", "--cluster", cluster, "--run-dir", _runDir);
        Assert.True(code == 0, output);
        Assert.Contains("stopped at step", output);

        // Every checkpoint is complete, loadable and finite (checked once training stopped: retention deletes
        // old checkpoints while it goes, and a reader without a pin can see one vanish mid-read).
        foreach (var (s, path) in CheckpointStore.List(Path.Combine(_runDir, "checkpoints")))
        {
            var ck = CheckpointDir.Open(path);
            Assert.Equal(s, ck.State.Step);
            foreach (var (key, tensor) in ck.Load("model.safetensors"))
                using (tensor)
                    Assert.True(tensor.isfinite().all().item<bool>(), $"{path}: {key} is not finite");
        }
    }

    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    private string Elapsed => $"{_clock.Elapsed.TotalSeconds:0}s";

    private static void WaitFor(Func<bool> condition, string what, NodeProcess watch)
    {
        var until = DateTime.UtcNow + Progress;
        while (!condition())
        {
            if (watch.HasExited) throw new InvalidOperationException($"{watch.Name} exited while waiting for {what}:\n{watch.Output}");
            if (DateTime.UtcNow > until) throw new TimeoutException($"no {what} within {Progress}:\n{watch.Name}:\n{watch.Output}");
            Thread.Sleep(500);
        }
    }

    private static long StepOf(string status)
    {
        var m = Regex.Match(status, @"step\s+(\d+) /");
        return m.Success ? long.Parse(m.Groups[1].Value) : -1;
    }

    private long WaitForStep(string cluster, long target, NodeProcess watch)
    {
        var until = DateTime.UtcNow + Progress;
        string last = "";
        while (DateTime.UtcNow < until)
        {
            if (watch.HasExited) throw new InvalidOperationException($"{watch.Name} exited:\n{watch.Output}");
            var (code, output) = NodeProcess.Run(Cli, "status", "--cluster", cluster, "--run-dir", _runDir);
            last = code == 0 ? output : $"(status failed: {output})";
            long s = StepOf(last);
            if (s >= target) return s;
            Thread.Sleep(1000);
        }
        throw new TimeoutException($"step {target} not reached; last status:\n{last}\n{watch.Name}:\n{watch.Output}");
    }

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }
}
