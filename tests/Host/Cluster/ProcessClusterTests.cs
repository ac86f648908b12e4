using System.Text.RegularExpressions;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// Real `litevae node` processes on loopback: a coordinator+trainer node, data nodes and an eval node train the
/// quickstart experiment (shrunk to 32² so CI stays short). The cluster must survive the loss of any minority
/// of its nodes (hocon/base.conf: keep-majority): a data node killed with SIGKILL is replaced; the
/// coordinator+trainer node killed with SIGKILL is replaced and the new trainer resumes from the last complete
/// checkpoint; the coordinator node and a data node killed at the same moment, mid-checkpoint, leave a majority
/// that goes on; a frozen node is downed and exits with its code; every checkpoint on disk is complete; stop
/// ends every node with exit code 0.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ProcessClusterTests : IDisposable
{
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(90), Cli = TimeSpan.FromSeconds(60), Progress = TimeSpan.FromMinutes(3);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-cluster-{Guid.NewGuid():N}");
    private readonly List<NodeProcess> _nodes = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>A line in the test's output with the seconds since it began (where a slow run spends its time).</summary>
    private void Mark(string what) => Console.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1}s  {what}");

    private static readonly string[] Experiment =
    [
        "--config", "configs/quickstart.conf",
        "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
        "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
        "--set", "checkpoint.every-steps=4", "--set", "checkpoint.keep-last=3",
    ];

    private string[] NodeArgs(string hocon, int port, IEnumerable<int> seeds, bool coordinator, string[] extra) =>
    [
        "node", "--hocon", $"hocon/{hocon}", .. extra,
        "--set", $"litevae.node.port={port}",
        "--set", $"litevae.node.seed-nodes=[{string.Join(",", seeds.Select(s => $"\"127.0.0.1:{s}\""))}]",
        "--set", $"litevae.run.run-dir=\"{_runDir}\"",
        "--set", "litevae.coordinator.stale-lease-s=10",
        "--set", "akka.cluster.split-brain-resolver.stable-after=3s",
        "--set", "akka.cluster.failure-detector.acceptable-heartbeat-pause=3s",
        .. (coordinator ? Experiment : []),
    ];

    private NodeProcess StartNode(string name, string hocon, int port, IEnumerable<int> seeds, bool coordinator = false, params string[] extra)
    {
        var n = NodeProcess.Start(name, NodeArgs(hocon, port, seeds, coordinator, extra));
        _nodes.Add(n);
        n.WaitForAddress(Start);
        return n;
    }

    [Fact]
    public void Three_node_cluster_trains_answers_commands_and_survives_kill_9_of_data_and_trainer_nodes()
    {
        int pA = NodeProcess.FreePort(), pD = NodeProcess.FreePort(), pE = NodeProcess.FreePort();
        var a = StartNode("coordinator+trainer", "coordinator.conf", pA, [pA, pD], coordinator: true);
        var d = StartNode("data", "data-node.conf", pD, [pA, pD]);
        // Each evaluation batch takes 1.5 s on this eval node, so a second evaluation waits while the first runs.
        var e = StartNode("eval", "eval-node.conf", pE, [pA, pD], coordinator: false, "--debug-eval-batch-delay-ms", "1500");
        string cluster = $"127.0.0.1:{pA}";

        long step = WaitForStep(cluster, 8, a);
        Mark("three nodes up, step 8");
        var status = Status(cluster);
        Assert.Contains("coordinator", status);
        Assert.Contains("data", status);
        Assert.Contains("eval", status);
        Assert.Matches(@"samples\s+epoch \d+, sample \d+: \d+ trained", status);

        // eval --cluster: a real checkpoint gives a metrics table; a bad one a clear error; training goes on.
        var (code, output) = NodeProcess.Run(Cli, "eval", "--cluster", cluster, "--run-dir", _runDir, "--checkpoint", "last", "--wait");
        Assert.True(code == 0, output);
        Assert.Matches(@"psnr\s+\d+\.\d+", output);
        (code, output) = NodeProcess.Run(Cli, "eval", "--cluster", cluster, "--run-dir", _runDir, "--checkpoint", "step-99999");
        Assert.Equal(1, code);
        Assert.Contains("no checkpoint 'step-99999'", output);
        (code, output) = NodeProcess.Run(Cli, "status", "--cluster", "127.0.0.1");
        Assert.Equal(1, code);
        Assert.Contains("malformed address", output);

        // kill -9 the data node mid-run; a replacement joins; training continues.
        Mark("evaluated; killing the data node");
        d.KillHard();
        long atKill = StepOf(Status(cluster));
        int pD2 = NodeProcess.FreePort();
        StartNode("data-2", "data-node.conf", pD2, [pA, pD2]);
        WaitForStep(cluster, atKill + 8, a);
        status = Status(cluster);
        var acct = Regex.Match(status, @"sample (\d+): (\d+) trained, (\d+) skipped as bad, (\d+) batch\(es\) dropped as repeats \(whole run\); (\d+) lease\(s\) re-issued");
        Assert.True(acct.Success, status);
        Assert.Equal(long.Parse(acct.Groups[1].Value), long.Parse(acct.Groups[2].Value) + long.Parse(acct.Groups[3].Value));   // every sample up to where the run stands: trained once or skipped
        Console.WriteLine($"after the data node's kill -9: {acct.Value}");

        // The killed data node must be gone from the membership before the next kill: until then it still counts,
        // and losing the coordinator's node too would be 2 of 4, not a minority (an even split, see base.conf).
        WaitForMember(cluster, pD, present: false);
        Mark("the killed data node is removed");

        // Two evaluations: the first runs on the eval node, the second waits for it. Then kill -9 the
        // coordinator+trainer node; a new one joins through the surviving nodes, resumes training, and runs the
        // waiting evaluation under the same id (the queue is kept in the run directory).
        string EvalJob()
        {
            var (c, o) = NodeProcess.Run(Cli, "eval", "--cluster", cluster, "--run-dir", _runDir, "--checkpoint", "last");
            Assert.True(c == 0, o);
            return Regex.Match(o, @"evaluation (\S+) of").Groups[1].Value;
        }
        string running = EvalJob(), waiting = EvalJob();
        var checkpointsBefore = CheckpointStore.List(Path.Combine(_runDir, "checkpoints"));
        Assert.NotEmpty(checkpointsBefore);
        a.KillHard();
        Mark("two evaluations queued; coordinator node killed");
        int pA2 = NodeProcess.FreePort();
        var a2 = StartNode("coordinator+trainer-2", "coordinator.conf", pA2, [pD2, pE], coordinator: true);
        string cluster2 = $"127.0.0.1:{pE}";
        long resumedFrom = checkpointsBefore[^1].Step;
        WaitForStep(cluster2, resumedFrom + 6, a2);
        Assert.Contains("resume from", a2.Output);
        Mark("the replacement coordinator trains");
        foreach (string job in new[] { waiting, running })
        {
            (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(2), "eval", "--cluster", cluster2, "--run-dir", _runDir, "--job", job, "--wait");
            Assert.True(code == 0, output);
            Assert.Matches(@"psnr\s+\d+\.\d+", output);
        }

        // stop: final checkpoint, then every node leaves and exits cleanly.
        Mark("both evaluations answered by the new coordinator");
        (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(3), "stop", "--cluster", cluster2, "--run-dir", _runDir);
        Assert.True(code == 0, output);
        Assert.Contains("stopped at step", output);
        AssertAllExitCleanly(_nodes.Where(n => n != a && n != d));
        AssertCheckpointsComplete();
        AssertAuditOk();
        Mark("stopped");
    }

    [Fact]
    public void Five_node_cluster_survives_the_coordinator_node_and_a_data_node_killed_together_mid_checkpoint()
    {
        int pA = NodeProcess.FreePort(), pD1 = NodeProcess.FreePort(), pD2 = NodeProcess.FreePort(), pD3 = NodeProcess.FreePort(), pE = NodeProcess.FreePort();
        int[] seeds = [pA, pD1];
        // Each checkpoint file takes 0.4 s to write, so the kill lands inside a write.
        var a = StartNode("coordinator+trainer", "coordinator.conf", pA, seeds, coordinator: true, "--debug-checkpoint-file-delay-ms", "400");
        var d1 = StartNode("data-1", "data-node.conf", pD1, seeds);
        var d2 = StartNode("data-2", "data-node.conf", pD2, seeds);
        var d3 = StartNode("data-3", "data-node.conf", pD3, seeds);
        var e = StartNode("eval", "eval-node.conf", pE, seeds);
        WaitForStep($"127.0.0.1:{pA}", 6, a);
        foreach (int p in new[] { pD1, pD2, pD3, pE }) WaitForMember($"127.0.0.1:{pA}", p, present: true);

        string checkpoints = Path.Combine(_runDir, "checkpoints");
        var until = DateTime.UtcNow + Progress;
        while (!Directory.EnumerateDirectories(checkpoints, ".tmp-step-*").Any())
        {
            Assert.True(DateTime.UtcNow < until, "no checkpoint write was seen in progress");
            Thread.Sleep(20);
        }
        NodeProcess.KillHardTogether(a, d1);
        long lastComplete = CheckpointStore.List(checkpoints)[^1].Step;

        // Three of five remain: a majority. They down the two lost nodes and keep running; a replacement
        // coordinator joins through them and resumes from the last complete checkpoint.
        var a2 = StartNode("coordinator+trainer-2", "coordinator.conf", NodeProcess.FreePort(), [pD2, pD3], coordinator: true);
        string cluster = $"127.0.0.1:{pE}";
        WaitForStep(cluster, lastComplete + 4, a2);
        Assert.Contains($"resume from {Path.Combine(checkpoints, CheckpointStore.StepDirName(lastComplete))}", a2.Output);
        foreach (var survivor in new[] { d2, d3, e })
            Assert.False(survivor.HasExited, $"{survivor.Name} left the cluster although it was on the majority side:\n{survivor.Output}");
        WaitForMember(cluster, pA, present: false);
        WaitForMember(cluster, pD1, present: false);

        // A node frozen long enough to be judged dead is downed by the majority; when it wakes up it learns so
        // and exits with the "downed" code (3), for its supervisor to restart it.
        d3.Signal("STOP");
        WaitForMember(cluster, pD3, present: false);
        d3.Signal("CONT");
        Assert.True(d3.WaitForExit(TimeSpan.FromSeconds(60)), $"the downed node did not exit:\n{d3.Output}");
        Assert.Equal(3, d3.ExitCode);

        var (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(3), "stop", "--cluster", cluster, "--run-dir", _runDir);
        Assert.True(code == 0, output);
        AssertAllExitCleanly([a2, d2, e]);
        AssertCheckpointsComplete();
        AssertAuditOk();
    }

    [Fact]
    public void A_node_that_cannot_join_its_seeds_exits_with_code_4()
    {
        int seed = NodeProcess.FreePort();   // nothing listens there
        var n = NodeProcess.Start("lonely data node", NodeArgs("data-node.conf", NodeProcess.FreePort(), [seed], coordinator: false,
            ["--set", "akka.cluster.shutdown-after-unsuccessful-join-seed-nodes=3s"]));
        _nodes.Add(n);
        Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), n.Output);
        Assert.Equal(4, n.ExitCode);
        Assert.Contains("could not join", n.Output);
    }

    /// <summary>Every checkpoint on disk is complete and loadable (checked once training stopped: retention runs while it goes).</summary>
    private void AssertCheckpointsComplete()
    {
        var all = CheckpointStore.List(Path.Combine(_runDir, "checkpoints"));
        Assert.NotEmpty(all);
        foreach (var (s, path) in all)
            Assert.Equal(s, CheckpointDir.Open(path).State.Step);
    }

    /// <summary>From the run directory alone: every sample the run reached was trained exactly once, across the kills.</summary>
    private void AssertAuditOk()
    {
        var audit = LiteVae.Host.Tests.Support.CliRunner.Run("audit", _runDir);
        Assert.True(audit.ExitCode == 0, audit.Out + audit.Error);
        Assert.Contains("OK: every sample the run reached was trained exactly once", audit.Out);
        Console.WriteLine(audit.Out);
    }

    private static void AssertAllExitCleanly(IEnumerable<NodeProcess> nodes)
    {
        foreach (var n in nodes)
        {
            Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), $"{n.Name} did not exit after stop:\n{n.Output}");
            Assert.True(n.ExitCode == 0, $"{n.Name} exited with {n.ExitCode} after stop:\n{n.Output}");
        }
    }

    /// <summary>Waits until the cluster's member list does (or no longer does) hold the node listening on <paramref name="port"/>.</summary>
    private void WaitForMember(string cluster, int port, bool present)
    {
        var until = DateTime.UtcNow + Progress;
        string last = "";
        while (DateTime.UtcNow < until)
        {
            last = Status(cluster);
            if (!last.StartsWith("(status failed", StringComparison.Ordinal))
            {
                var members = last[(last.IndexOf("members", StringComparison.Ordinal) + 7)..];
                if (Regex.IsMatch(members, $@":{port}\s") == present) return;
            }
            Thread.Sleep(500);
        }
        throw new TimeoutException($"node on port {port} still {(present ? "absent" : "a member")}; last status:\n{last}");
    }

    private string Status(string cluster)
    {
        var (code, output) = NodeProcess.Run(Cli, "status", "--cluster", cluster, "--run-dir", _runDir);
        return code == 0 ? output : $"(status failed: {output})";
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
            last = Status(cluster);
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
