using System.Net;
using System.Text.RegularExpressions;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>
/// Three real `litevae node` processes on loopback that share no directory: each has its own run directory
/// (litevae.storage.shared-run-dir = no, since on one machine every path is visible to every process), A
/// (coordinator + data) holds the training shards, the held-out shards come over http(s) from a web server, B trains
/// and C evaluates. B's checkpoints reach A's run directory (the run's home) over the cluster and count only once
/// complete there; C evaluates a checkpoint it fetched from A. B is killed with SIGKILL; a replacement trainer D in a
/// fresh directory fetches the last checkpoint A acknowledged, resumes from it, and its checkpoints reach A too. D
/// stopped with SIGTERM stays until A has its final checkpoint; E resumes from it. Stop waits for the final
/// checkpoint to be stored at A before the nodes leave.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class NoSharedDiskTests : IDisposable
{
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(90), Cli = TimeSpan.FromSeconds(60), Progress = TimeSpan.FromMinutes(4);
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"litevae-noshare-{Guid.NewGuid():N}");
    private readonly List<NodeProcess> _nodes = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private StaticFileServer? _web;

    private void Mark(string what) => Console.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1}s  {what}");

    private string Dir(string node) => Path.Combine(_root, node);
    private string RunOf(string node) => Path.Combine(Dir(node), "run");
    private string CheckpointsOf(string node) => RunDirectory.CheckpointsOf(RunOf(node));

    private NodeProcess StartNode(string name, string node, string hocon, int port, int seed, params string[] extra)
    {
        Directory.CreateDirectory(Dir(node));
        var n = NodeProcess.Start(name,
        [
            "node", "--hocon", $"hocon/{hocon}", .. extra,
            "--set", $"litevae.node.port={port}",
            "--set", $"litevae.node.seed-nodes=[\"127.0.0.1:{seed}\"]",
            "--set", $"litevae.run.run-dir=\"{RunOf(node)}\"",
            "--set", $"litevae.run.runs-root=\"{Path.Combine(Dir(node), "runs")}\"",
            "--set", "litevae.storage.shared-run-dir=no",
            "--set", "litevae.storage.chunk-kb=64",   // several chunks per checkpoint file, even for this tiny model
            "--set", "akka.cluster.split-brain-resolver.stable-after=3s",
            "--set", "akka.cluster.failure-detector.acceptable-heartbeat-pause=3s",
        ]);
        _nodes.Add(n);
        n.WaitForAddress(Start);
        return n;
    }

    [Fact]
    public void A_cluster_with_no_shared_directory_trains_evaluates_on_the_eval_node_and_survives_the_loss_of_its_trainer_node()
    {
        // A's disk holds the training shards; the held-out shard is on a web server (http(s) shards need no disk at all).
        string shards = Path.Combine(NodeProcess.RepoRoot, "samples", "shards");
        Directory.CreateDirectory(Path.Combine(Dir("a"), "data"));
        foreach (var f in Directory.GetFiles(shards, "train-*.tar"))
            File.Copy(f, Path.Combine(Dir("a"), "data", Path.GetFileName(f)));
        _web = new StaticFileServer(shards);

        int pA = NodeProcess.FreePort();
        var a = StartNode("A coordinator+data", "a", "coordinator.conf", pA, pA,
            "--set", "litevae.node.roles=[coordinator, data]",
            "--config", "configs/quickstart.conf",
            "--set", $"data.source=\"{Path.Combine(Dir("a"), "data")}/train-{{000000..000003}}.tar\"",
            "--set", $"eval-data.source=\"{_web.Url("eval-000000.tar")}\"",
            "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
            "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=100000", "--set", "trainer.log-every=2",
            "--set", "checkpoint.every-steps=4", "--set", "checkpoint.keep-last=20",   // the evaluated one stays at A to compare
            "--set", "litevae.coordinator.overdue-batch-s=10");
        var b = StartNode("B trainer", "b", "trainer-node.conf", NodeProcess.FreePort(), pA);
        var c = StartNode("C eval", "c", "eval-node.conf", NodeProcess.FreePort(), pA);
        string cluster = $"127.0.0.1:{pA}";

        // Training: B writes its checkpoints in its own directory; A stores copies, which are what the run counts.
        WaitForStep(cluster, 8, a);
        long adopted = WaitFor(() => CheckpointStore.List(CheckpointsOf("a")).LastOrDefault().Step, s => s >= 4, "a checkpoint stored at A", a);
        Mark($"training on B; A holds step {adopted}");
        Assert.NotEmpty(CheckpointStore.List(CheckpointsOf("b")));
        Assert.Matches(@"checkpoint step \d+ stored in the run directory: .*MiB copied from", a.Output);

        // An evaluation on C of a checkpoint C fetched from A.
        var (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(3), "eval", "--cluster", cluster, "--run-dir", RunOf("a"), "--checkpoint", "last", "--wait");
        Assert.True(code == 0, output + "\nC:\n" + c.Output);
        Assert.Matches(@"psnr\s+\d+\.\d+", output);
        string evaluated = Regex.Match(output, @"evaluation \S+ of (\S+) accepted").Groups[1].Value;
        Assert.StartsWith(CheckpointsOf("a"), evaluated);
        string copy = Path.Combine(CheckpointsOf("c"), Path.GetFileName(evaluated));
        Assert.Contains($"checkpoint fetched to {copy}", c.Output);
        var atHome = CheckpointManifest.Of(evaluated);
        Assert.Equal(atHome, CheckpointManifest.Of(copy));
        Assert.NotEmpty(Directory.GetFiles(RunDirectory.EvalOf(RunOf("c")), "*.json", SearchOption.AllDirectories));
        Mark($"evaluated {Path.GetFileName(evaluated)} on C from its own copy");

        // SIGKILL of the trainer node: the run keeps what A stored; a trainer in a fresh directory resumes from it.
        b.KillHard();
        WaitForMember(cluster, "B", b, present: false);
        var home = CheckpointStore.List(CheckpointsOf("a"));
        long resumeStep = home[^1].Step;
        Mark($"B killed and removed; A's last checkpoint is step {resumeStep}");
        var d = StartNode("D trainer", "d", "trainer-node.conf", NodeProcess.FreePort(), pA);
        string resumeCopy = Path.Combine(CheckpointsOf("d"), CheckpointStore.StepDirName(resumeStep));
        WaitFor(() => d.Output.Contains($"resume checkpoint fetched: {resumeCopy}"), ok => ok, $"D fetching step {resumeStep}", d);
        Assert.Contains($"resume from {home[^1].Path}", a.Output);
        long step = WaitForStep(cluster, resumeStep + 6, a);
        Assert.True(step > resumeStep);
        Assert.Equal(CheckpointManifest.Of(resumeCopy).Single(f => f.Name == "model.safetensors"),
            CheckpointManifest.Of(home[^1].Path).Single(f => f.Name == "model.safetensors"));
        WaitFor(() => CheckpointStore.List(CheckpointsOf("a"))[^1].Step, s => s > resumeStep, "a checkpoint of D stored at A", a);
        Mark($"D resumed from step {resumeStep} and trains (step {step})");

        // SIGTERM of the trainer node: it writes a final checkpoint and stays until A has stored it, then exits 0.
        d.Signal("TERM");
        Assert.True(d.WaitForExit(TimeSpan.FromSeconds(150)), $"D did not exit after SIGTERM:\n{d.Output}");
        Assert.True(d.ExitCode == 0, $"D exited with {d.ExitCode}:\n{d.Output}");
        long final = CheckpointStore.List(CheckpointsOf("d"))[^1].Step;
        Assert.Equal(final, CheckpointStore.List(CheckpointsOf("a"))[^1].Step);
        Mark($"D left after SIGTERM; its final checkpoint (step {final}) is at A");
        var e = StartNode("E trainer", "e", "trainer-node.conf", NodeProcess.FreePort(), pA);
        WaitForStep(cluster, final + 2, a);
        Assert.Contains($"resume checkpoint fetched: {Path.Combine(CheckpointsOf("e"), CheckpointStore.StepDirName(final))}", e.Output);

        // Stop: the final checkpoint is written on E and stored at A before the run reports it stopped.
        (code, output) = NodeProcess.Run(TimeSpan.FromMinutes(3), "stop", "--cluster", cluster, "--run-dir", RunOf("a"));
        Assert.True(code == 0, output);
        long stopped = long.Parse(Regex.Match(output, @"stopped at step (\d+)").Groups[1].Value);
        Assert.Equal(stopped, CheckpointStore.List(CheckpointsOf("a"))[^1].Step);
        foreach (var n in new[] { a, c, e })
        {
            Assert.True(n.WaitForExit(TimeSpan.FromSeconds(90)), $"{n.Name} did not exit after stop:\n{n.Output}");
            Assert.True(n.ExitCode == 0, $"{n.Name} exited with {n.ExitCode}:\n{n.Output}");
        }
        foreach (var (s, path) in CheckpointStore.List(CheckpointsOf("a")))
            Assert.Equal(s, CheckpointDir.Open(path).State.Step);
        Assert.Empty(Directory.EnumerateDirectories(CheckpointsOf("a"), ".part-*"));
        Mark($"stopped at step {stopped}, stored at A");
    }

    private T WaitFor<T>(Func<T> read, Func<T, bool> done, string what, NodeProcess watch)
    {
        var until = DateTime.UtcNow + Progress;
        T last = read();
        while (!done(last))
        {
            if (watch.HasExited) throw new InvalidOperationException($"{watch.Name} exited while waiting for {what}:\n{watch.Output}");
            if (DateTime.UtcNow > until) throw new TimeoutException($"no {what} in {Progress} (last: {last}):\n{watch.Name}:\n{watch.Output}");
            Thread.Sleep(300);
            last = read();
        }
        return last;
    }

    private string Status(string cluster)
    {
        var (code, output) = NodeProcess.Run(Cli, "status", "--cluster", cluster, "--run-dir", RunOf("a"));
        return code == 0 ? output : $"(status failed: {output})";
    }

    private long WaitForStep(string cluster, long target, NodeProcess watch)
    {
        var until = DateTime.UtcNow + Progress;
        string last = "";
        while (DateTime.UtcNow < until)
        {
            if (watch.HasExited) throw new InvalidOperationException($"{watch.Name} exited:\n{watch.Output}");
            last = Status(cluster);
            var m = Regex.Match(last, @"step\s+(\d+) /");
            if (m.Success && long.Parse(m.Groups[1].Value) >= target) return long.Parse(m.Groups[1].Value);
            Thread.Sleep(1000);
        }
        throw new TimeoutException($"step {target} not reached; last status:\n{last}\n{watch.Name}:\n{watch.Output}\n" +
                                   string.Join("\n", _nodes.Where(n => n != watch).Select(n => $"{n.Name}:\n{n.Output}")));
    }

    private void WaitForMember(string cluster, string name, NodeProcess node, bool present)
    {
        int port = int.Parse(node.Address!.Split(':')[^1]);
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
        throw new TimeoutException($"{name} (port {port}) still {(present ? "absent" : "a member")}; last status:\n{last}");
    }

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        _web?.Dispose();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    /// <summary>A web server on 127.0.0.1 for the files of one folder, with byte ranges (what http(s) shards read with).</summary>
    private sealed class StaticFileServer : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly string _folder;
        private readonly int _port = NodeProcess.FreePort();

        public StaticFileServer(string folder)
        {
            _folder = folder;
            _listener.Prefixes.Add($"http://127.0.0.1:{_port}/");
            _listener.Start();
            _ = Task.Run(Serve);
        }

        public string Url(string file) => $"http://127.0.0.1:{_port}/{file}";

        private async Task Serve()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await _listener.GetContextAsync(); }
                catch (Exception) { return; }
                _ = Task.Run(async () =>
                {
                    try
                    {
                        string path = Path.Combine(_folder, Path.GetFileName(ctx.Request.Url!.AbsolutePath));
                        if (!File.Exists(path)) { ctx.Response.StatusCode = 404; return; }
                        var data = await File.ReadAllBytesAsync(path);
                        var range = Regex.Match(ctx.Request.Headers["Range"] ?? "", @"^bytes=(\d+)-(\d*)$");
                        if (range.Success)
                        {
                            long from = long.Parse(range.Groups[1].Value);
                            long to = range.Groups[2].Value == "" ? data.Length - 1 : Math.Min(long.Parse(range.Groups[2].Value), data.Length - 1);
                            ctx.Response.StatusCode = 206;
                            ctx.Response.AddHeader("Content-Range", $"bytes {from}-{to}/{data.Length}");
                            data = data[(int)from..(int)(to + 1)];
                        }
                        ctx.Response.ContentLength64 = data.Length;
                        await ctx.Response.OutputStream.WriteAsync(data);
                    }
                    catch (Exception) { }
                    finally { try { ctx.Response.Close(); } catch (Exception) { } }
                });
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
        }
    }
}
