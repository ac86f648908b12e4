using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// Cluster Bootstrap and health with real `litevae node` processes on loopback: no seed nodes, Akka.Discovery's config
/// method lists the nodes' management endpoints, and the cluster forms from them (the lowest-addressed node founds it
/// once every listed node answers); a node killed and started again joins the running cluster the same way;
/// /health/ready says not-ready until this node is a member Up, ready after; /health/alive says alive throughout;
/// a management port that is taken stops the node with an error naming the key.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class BootstrapClusterTests : IDisposable
{
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(90), Cli = TimeSpan.FromSeconds(60), Form = TimeSpan.FromMinutes(3);
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-bootstrap-{Guid.NewGuid():N}");
    private readonly List<NodeProcess> _nodes = [];
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(20) };

    private static readonly string[] Experiment =
    [
        "--config", "configs/quickstart.conf",
        "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
        "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
        "--set", "checkpoint.every-steps=4", "--set", "checkpoint.keep-last=3",
    ];

    /// <summary>A node that finds its cluster by config discovery over <paramref name="endpoints"/> (management ports on 127.0.0.1).</summary>
    private NodeProcess StartBootstrapped(string name, string hocon, int managementPort, int[] endpoints, bool coordinator = false, TimeSpan? start = null)
    {
        var n = NodeProcess.Start(name,
        [
            "node", "--hocon", $"hocon/{hocon}",
            "--set", "litevae.node.port=0",            // any port: bootstrap learns the remoting address from the contact point
            "--set", "litevae.node.seed-nodes=[]",
            "--set", "litevae.node.discovery.method=config",
            "--set", $"litevae.node.discovery.endpoints=[{string.Join(",", endpoints.Select(p => $"\"127.0.0.1:{p}\""))}]",
            "--set", "litevae.node.discovery.stable-margin-s=1",
            "--set", "litevae.management.enabled=on",
            "--set", $"litevae.management.port={managementPort}",
            "--set", $"litevae.run.run-dir=\"{_runDir}\"",
            // A killed node is downed within seconds, not the default 10 s + 5 s (as in ProcessClusterTests).
            "--set", "akka.cluster.split-brain-resolver.stable-after=3s",
            "--set", "akka.cluster.failure-detector.acceptable-heartbeat-pause=3s",
            .. (coordinator ? Experiment : []),
        ]);
        _nodes.Add(n);
        n.WaitForAddress(start ?? Start);   // printed after the management endpoint listens
        return n;
    }

    [Fact]
    public void Three_nodes_without_seed_nodes_form_one_cluster_by_config_discovery_report_ready_only_once_Up_and_a_restarted_node_rejoins()
    {
        int mA = NodeProcess.FreePort(), mD = NodeProcess.FreePort(), mE = NodeProcess.FreePort();
        int[] endpoints = [mA, mD, mE];
        var a = StartBootstrapped("coordinator+trainer", "coordinator.conf", mA, endpoints, coordinator: true);

        // Alone, it cannot form the cluster: the other listed endpoints do not answer yet. It is alive, not ready.
        var (code, body) = Get(mA, "/health/ready");
        Assert.True(code == 503, $"{code} {body}");
        Assert.Contains("not a cluster member Up yet", body);
        (code, body) = Get(mA, "/health/alive");
        Assert.True(code == 200, $"{code} {body}");
        Assert.Contains("\"status\":\"Healthy\"", body);

        var d = StartBootstrapped("data", "data-node.conf", mD, endpoints);
        var e = StartBootstrapped("eval", "eval-node.conf", mE, endpoints);
        foreach (var (node, port) in new[] { (a, mA), (d, mD), (e, mE) })
        {
            body = WaitForReady(node, port);
            Assert.Contains("member Up in a cluster of", body);
        }

        // One cluster, not three: the coordinator's status lists the other two nodes, and the run trains with them.
        string cluster = a.Address!;
        var status = WaitForStatus(cluster, s => Regex.IsMatch(s, @"step\s+([4-9]|\d\d+) /"), a);
        string members = status[status.IndexOf("members", StringComparison.Ordinal)..];
        foreach (var n in new[] { d, e })
            Assert.Matches($@"{Regex.Escape(n.Address!)}\s", members);
        Assert.Contains("data", members);
        Assert.Contains("eval", members);
        (code, body) = Get(mD, "/bootstrap/seed-nodes");   // the contact point bootstrap probes lists the members too
        Assert.True(code == 200, body);
        foreach (var n in new[] { a, d, e })
            Assert.Contains($"\"Port\":{n.Address!.Split(':')[1]}", body);

        // A node lost (kill -9) and started again on its endpoint (what a supervisor or a Job's new pod does) joins
        // the running cluster through a contact point that is in it; it is ready once Up, after the lost one is downed.
        // Its port holds the dead process's connections in TIME_WAIT for up to a minute: the new one waits them out.
        d.KillHard();
        var d2 = StartBootstrapped("data-2", "data-node.conf", mD, endpoints, start: Start + TimeSpan.FromSeconds(75));
        Assert.Contains("member Up in a cluster of", WaitForReady(d2, mD));
        WaitForStatus(cluster, s =>
        {
            string m = s[s.IndexOf("members", StringComparison.Ordinal)..];
            return Regex.IsMatch(m, $@"{Regex.Escape(d2.Address!)}\s") && !Regex.IsMatch(m, $@"{Regex.Escape(d.Address!)}\s");
        }, a);

        var (stopCode, stopped) = NodeProcess.Run(TimeSpan.FromMinutes(3), "stop", "--cluster", cluster, "--run-dir", _runDir);
        Assert.True(stopCode == 0, stopped);
        foreach (var n in new[] { a, d2, e })
        {
            Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), $"{n.Name} did not exit after stop:\n{n.Output}");
            Assert.True(n.ExitCode == 0, $"{n.Name} exited with {n.ExitCode}:\n{n.Output}");
        }
    }

    [Fact]
    public void A_node_with_static_seeds_serves_health_and_stops_with_a_clear_error_when_its_management_port_is_taken()
    {
        // Static discovery (no seeds: a cluster of one), management on: ready once Up.
        int m = NodeProcess.FreePort();
        var n = NodeProcess.Start("data", "node", "--hocon", "hocon/data-node.conf", "--set", "litevae.node.port=0", "--set", "litevae.node.seed-nodes=[]",
            "--set", "litevae.management.enabled=on", "--set", $"litevae.management.port={m}");
        _nodes.Add(n);
        n.WaitForAddress(Start);
        Assert.Contains("member Up in a cluster of 1", WaitForReady(n, m));
        var (code, body) = Get(m, "/health/alive");
        Assert.True(code == 200, body);
        Assert.Contains("litevae-liveness", body);
        Assert.True(Get(m, "/bootstrap/seed-nodes").Code == 404, "the bootstrap route is served only when the node bootstraps");

        // A second node on the same management port: exit code 1 and the key to change, before it announces itself.
        var clash = NodeProcess.Start("clash", "node", "--hocon", "hocon/data-node.conf", "--set", "litevae.node.port=0", "--set", "litevae.node.seed-nodes=[]",
            "--set", "litevae.management.enabled=on", "--set", $"litevae.management.port={m}");
        _nodes.Add(clash);
        Assert.True(clash.WaitForExit(Start), clash.Output);
        Assert.Equal(1, clash.ExitCode);
        Assert.Contains($"error: hocon/data-node.conf: the management endpoint cannot listen on 127.0.0.1:{m}", clash.Output);
        Assert.Contains("litevae.management.port", clash.Output);
        Assert.Null(clash.Address);

        // The first one is unharmed, and stops cleanly on SIGTERM.
        Assert.Equal(200, Get(m, "/health/ready").Code);
        n.Signal("TERM");
        Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), n.Output);
        Assert.Equal(0, n.ExitCode);
    }

    private static (int Code, string Body) Get(int port, string path)
    {
        try
        {
            using var r = Http.GetAsync($"http://127.0.0.1:{port}{path}").GetAwaiter().GetResult();
            return ((int)r.StatusCode, r.Content.ReadAsStringAsync().GetAwaiter().GetResult());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException)
        {
            return (0, e.Message);
        }
    }

    private static string WaitForReady(NodeProcess node, int port)
    {
        var until = DateTime.UtcNow + Form;
        (int Code, string Body) last = (0, "");
        while (DateTime.UtcNow < until)
        {
            if (node.HasExited) throw new InvalidOperationException($"{node.Name} exited ({node.ExitCode}):\n{node.Output}");
            last = Get(port, "/health/ready");
            if (last.Code == (int)HttpStatusCode.OK) return last.Body;
            Thread.Sleep(500);
        }
        throw new TimeoutException($"{node.Name} not ready after {Form}: {last.Code} {last.Body}\n{node.Output}");
    }

    private string WaitForStatus(string cluster, Func<string, bool> done, NodeProcess watch)
    {
        var until = DateTime.UtcNow + Form;
        string last = "";
        while (DateTime.UtcNow < until)
        {
            if (watch.HasExited) throw new InvalidOperationException($"{watch.Name} exited:\n{watch.Output}");
            var (code, output) = NodeProcess.Run(Cli, "status", "--cluster", cluster, "--run-dir", _runDir);
            last = output;
            if (code == 0 && done(output)) return output;
            Thread.Sleep(1000);
        }
        throw new TimeoutException($"status never showed what was awaited; last:\n{last}\n{watch.Name}:\n{watch.Output}");
    }

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }
}
