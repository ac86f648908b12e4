using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// Real `litevae node` processes on loopback: a coordinator+trainer node, a data node and an eval node
/// train the quickstart experiment (shrunk to 32² so CI stays short); status and eval --cluster answer; a
/// data node killed with SIGKILL is replaced and training goes on with the sample accounting reported; the
/// coordinator+trainer node killed with SIGKILL is replaced and the new trainer resumes from the last
/// checkpoint; every checkpoint on disk is complete; stop ends every node.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ProcessClusterTests : IDisposable
{
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(90), Cli = TimeSpan.FromSeconds(60), Progress = TimeSpan.FromMinutes(3);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-cluster-{Guid.NewGuid():N}");
    private readonly List<NodeProcess> _nodes = [];

    private static readonly string[] Experiment =
    [
        "--config", "configs/quickstart.conf",
        "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
        "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
        "--set", "checkpoint.every-steps=4", "--set", "checkpoint.keep-last=3",
    ];

    private string[] NodeArgs(string hocon, int port, IEnumerable<int> seeds, bool coordinator) =>
    [
        "node", "--hocon", $"hocon/{hocon}",
        "--set", $"litevae.node.port={port}",
        "--set", $"litevae.node.seed-nodes=[{string.Join(",", seeds.Select(s => $"\"127.0.0.1:{s}\""))}]",
        "--set", $"litevae.run.run-dir=\"{_runDir}\"",
        "--set", "litevae.coordinator.stale-lease-s=10",
        "--set", "akka.cluster.split-brain-resolver.stable-after=3s",
        "--set", "akka.cluster.failure-detector.acceptable-heartbeat-pause=3s",
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
    public void Three_node_cluster_trains_answers_commands_and_survives_kill_9_of_data_and_trainer_nodes()
    {
        int pA = FreePort(), pD = FreePort(), pE = FreePort();
        var a = StartNode("coordinator+trainer", "coordinator.conf", pA, [pA, pD], coordinator: true);
        var d = StartNode("data", "data-node.conf", pD, [pA, pD]);
        var e = StartNode("eval", "eval-node.conf", pE, [pA, pD]);
        string cluster = $"127.0.0.1:{pA}";

        long step = WaitForStep(cluster, 8, a);
        var status = Status(cluster);
        Assert.Contains("coordinator", status);
        Assert.Contains("data", status);
        Assert.Contains("eval", status);
        Assert.Matches(@"samples\s+epoch \d+: \d+ consumed", status);

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
        d.KillHard();
        long atKill = StepOf(Status(cluster));
        int pD2 = FreePort();
        StartNode("data-2", "data-node.conf", pD2, [pA, pD2]);
        WaitForStep(cluster, atKill + 8, a);
        status = Status(cluster);
        var acct = Regex.Match(status, @"(\d+) duplicated, (\d+) lost, \d+ bad, \d+ redelivered \(dropped\); (\d+) shard lease\(s\) re-issued");
        Assert.True(acct.Success, status);
        Assert.Equal("0", acct.Groups[1].Value);   // nothing trained twice
        Assert.Equal("0", acct.Groups[2].Value);   // nothing lost
        Console.WriteLine($"after the data node's kill -9: {acct.Value}");

        // kill -9 the coordinator+trainer node; a new one joins through the surviving nodes and resumes.
        var checkpointsBefore = CheckpointStore.List(Path.Combine(_runDir, "checkpoints"));
        Assert.NotEmpty(checkpointsBefore);
        a.KillHard();
        int pA2 = FreePort();
        var a2 = StartNode("coordinator+trainer-2", "coordinator.conf", pA2, [pD2, pE], coordinator: true);
        string cluster2 = $"127.0.0.1:{pE}";
        long resumedFrom = checkpointsBefore[^1].Step;
        WaitForStep(cluster2, resumedFrom + 6, a2);
        Assert.Contains("resume from", a2.Output);

        // Every checkpoint on disk is complete and loadable.
        foreach (var (s, path) in CheckpointStore.List(Path.Combine(_runDir, "checkpoints")))
        {
            var ck = CheckpointDir.Open(path);
            Assert.Equal(s, ck.State.Step);
        }

        // stop: final checkpoint, then every node leaves and exits.
        (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(3), "stop", "--cluster", cluster2, "--run-dir", _runDir);
        Assert.True(code == 0, output);
        Assert.Contains("stopped at step", output);
        foreach (var n in _nodes.Where(n => n != a && n != d))
            Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), $"{n.Name} did not exit after stop:\n{n.Output}");
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

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }
}
