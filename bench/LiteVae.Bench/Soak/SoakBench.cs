using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Bench.Soak;

/// <summary>
/// Soak (not CI): a CPU cluster of `litevae node` processes training the quickstart model shrunk to 32²
/// (coordinator+trainer, two data nodes, an eval node, with the run token), while a chaos driver kill -9s
/// data, eval and trainer nodes at random and starts replacements, fills the run's disk once (a tmpfs
/// mounted for the run), and cuts one data node off the network once: as root, that node runs in its own
/// network namespace and its link goes down past the failure detector (the nodes then listen on a veth
/// address, with --insecure: the link exists only inside this machine); otherwise SIGSTOP, then SIGCONT.
/// Reports steps, restarts per role, the whole run's samples trained once/twice/never (`litevae audit` of the
/// run directory after the stop), checkpoint corruptions, RSS slope per node
/// and recovery time per kill, into bench/results/soak-&lt;date&gt;.md.
///   litevae-bench soak --minutes 60 [--kill-every-s 60]
/// </summary>
internal sealed class SoakBench : IBenchmark
{
    public string Name => "soak";
    public string Description => "chaos soak of a CPU cluster (kill -9 nodes, full disk, a cut-off node); --minutes N (not CI)";

    public string Usage => """
        usage: litevae-bench soak [--minutes 60] [--kill-every-s 60]
        Run as root for the full-disk step (its own tmpfs) and the network cut (a network namespace); writes bench/results/soak-<date>.md.
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private readonly List<SoakProcess> _all = [];
    private readonly List<SoakProcess> _live = [];
    private readonly List<string> _events = [];
    private readonly List<Recovery> _recoveries = [];
    private readonly Dictionary<string, int> _restarts = new() { ["trainer"] = 0, ["data"] = 0, ["eval"] = 0 };
    private readonly DateTime _t0 = DateTime.UtcNow;
    private string _repo = "", _runDir = "";
    private NetnsLink? _netns;
    private string Host => _netns is null ? "127.0.0.1" : NetnsLink.HostIp;
    private string _lastStatus = "";
    private long _step;

    private sealed class Recovery(string what, DateTime at, long stepAtKill, SoakProcess replacement)
    {
        public string What => what;
        public DateTime At => at;
        public long StepAtKill => stepAtKill;
        public SoakProcess Replacement => replacement;
        public double? Seconds { get; set; }
        /// <summary>The step of the first status after the event that lists the replacement Up (after a
        /// trainer kill: the step it resumed from).</summary>
        public long? FirstStep { get; set; }
    }

    public int Run(string[] args)
    {
        double minutes = Arg(args, "--minutes", 60);
        double killEvery = Arg(args, "--kill-every-s", 60);
        _repo = FindRepo();
        string root = Directory.CreateTempSubdirectory("litevae-soak-").FullName;
        string fs = Directory.CreateDirectory(Path.Combine(root, "fs")).FullName;
        bool tmpfs = Environment.UserName == "root" && Sh("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", fs) == 0;
        _runDir = Path.Combine(fs, "run");
        Log($"soak for {minutes} min, a kill every ~{killEvery}s; run dir {_runDir} ({(tmpfs ? "own 256 MiB tmpfs" : "no tmpfs: disk-full step skipped")})");

        var rng = new Random(12345);
        _netns = NetnsLink.TryCreate(Log);
        try
        {
            int pA = FreePort(), pD = FreePort();
            StartNode("trainer", pA, [pA, pD]);
            StartNode("data", pD, [pA, pD]);
            StartNode("data", FreePort(), [pA, pD], inNamespace: _netns is not null);
            StartNode("eval", FreePort(), [pA, pD]);
            var end = _t0 + TimeSpan.FromMinutes(minutes);
            var nextKill = DateTime.UtcNow + TimeSpan.FromSeconds(killEvery * (0.7 + 0.6 * rng.NextDouble()));
            bool diskDone = !tmpfs, partitionDone = false;
            var lastSample = DateTime.MinValue;
            while (DateTime.UtcNow < end)
            {
                if (DateTime.UtcNow - lastSample > TimeSpan.FromSeconds(10))
                {
                    Sample();
                    lastSample = DateTime.UtcNow;
                }
                double progress = (DateTime.UtcNow - _t0) / (end - _t0);
                if (!diskDone && progress > 0.4) { FillDisk(fs); diskDone = true; }
                else if (!partitionDone && progress > 0.7) { CutOffDataNode(); partitionDone = true; }
                else if (DateTime.UtcNow > nextKill)
                {
                    KillOne(new[] { "data", "eval", "trainer" }[rng.Next(3)]);
                    nextKill = DateTime.UtcNow + TimeSpan.FromSeconds(killEvery * (0.7 + 0.6 * rng.NextDouble()));
                }
                ReplaceExited();
                Thread.Sleep(1000);
            }
            Sample();
            var (code, output) = Cli(TimeSpan.FromMinutes(4), "stop");
            Log($"stop: exit {code}: {output.Trim().Split('\n').LastOrDefault()}");
            foreach (var n in _live) n.WaitForExit(TimeSpan.FromSeconds(60));
            // The whole-run sample accounting, from the run directory alone (status counts restart with the coordinator).
            var (auditCode, audit) = SoakProcess.Run(_repo, TimeSpan.FromMinutes(5), "audit", _runDir);
            Log($"audit: exit {auditCode}");
            return Report(minutes, killEvery, tmpfs, audit);
        }
        finally
        {
            foreach (var p in _all) p.Dispose();
            _netns?.Dispose();
            if (tmpfs) Sh("umount", "-l", fs);
        }
    }

    // ------------------------------------------------------------------ cluster

    private const int CheckpointEvery = 20;

    private static readonly string[] Experiment =
    [
        "--config", "configs/quickstart.conf",
        "--set", "data.resolution=32", "--set", "data.batch-size=2", "--set", "eval-data.resolution=32", "--set", "eval-data.batch-size=4",
        "--set", "eval.images=4", "--set", "eval.grid-images=2", "--set", "trainer.max-steps=10000000", "--set", "trainer.log-every=5",
        "--set", $"checkpoint.every-steps={CheckpointEvery}", "--set", "checkpoint.keep-last=3",
    ];

    private SoakProcess StartNode(string role, int port, IEnumerable<int> seeds, bool inNamespace = false)
    {
        string hocon = role switch { "trainer" => "coordinator.conf", "data" => "data-node.conf", _ => "eval-node.conf" };
        string self = inNamespace ? NetnsLink.NsIp : Host;
        string[] args =
        [
            "node", "--hocon", $"hocon/{hocon}",
            "--set", $"litevae.node.hostname=\"{self}\"",
            "--set", $"litevae.node.port={port}",
            "--set", $"litevae.node.seed-nodes=[{string.Join(",", seeds.Select(s => $"\"{Host}:{s}\""))}]",
            .. _netns is null ? Array.Empty<string>() : ["--insecure"],
            "--set", $"litevae.run.run-dir=\"{_runDir}\"",
            "--set", "litevae.coordinator.stale-lease-s=10",
            "--set", "akka.cluster.split-brain-resolver.stable-after=5s",
            .. role == "trainer" ? Experiment : [],
        ];
        var p = SoakProcess.Start(role, port, _repo, args, inNamespace ? _netns : null);
        _all.Add(p);
        _live.Add(p);
        Log($"started {role} node on {self}:{port} (pid {p.Pid}){(inNamespace ? " in its own network namespace" : "")}");
        return p;
    }

    private IEnumerable<int> SeedsFor() => _live.Where(n => !n.HasExited).OrderBy(n => n.Role == "trainer" ? 0 : 1).Select(n => n.Port).Take(2);

    private void KillOne(string role)
    {
        var victim = _live.Where(n => n.Role == role && !n.HasExited).OrderBy(_ => Guid.NewGuid()).FirstOrDefault();
        if (victim is null) return;
        long stepAtKill = _step;
        victim.SampleRss();
        victim.KillHard();
        _live.Remove(victim);
        _restarts[role]++;
        Log($"kill -9 {role} node :{victim.Port} at step {stepAtKill}");
        var replacement = StartNode(role, FreePort(), SeedsFor());
        _recoveries.Add(new Recovery($"kill -9 {role}", DateTime.UtcNow, stepAtKill, replacement));
    }

    /// <summary>A node that exited on its own (downed after being cut off, or a crash) is replaced.</summary>
    private void ReplaceExited()
    {
        foreach (var gone in _live.Where(n => n.HasExited).ToList())
        {
            _live.Remove(gone);
            _restarts[gone.Role]++;
            Log($"{gone.Role} node :{gone.Port} exited by itself; replacing it. Its last lines: {Tail(gone.Output, 3)}");
            var replacement = StartNode(gone.Role, FreePort(), SeedsFor());
            _recoveries.Add(new Recovery($"{gone.Role} exited", DateTime.UtcNow, _step, replacement));
        }
    }

    private void FillDisk(string fs)
    {
        string filler = Path.Combine(fs, "filler");
        long free = new DriveInfo(fs).AvailableFreeSpace;
        long before = _step;
        Log($"disk full: filling the run's tmpfs ({free / 1048576} MiB free) at step {before}, until a checkpoint boundary has passed");
        try
        {
            using (var f = new FileStream(filler, FileMode.Create))
            {
                var block = new byte[1 << 20];
                try { while (true) f.Write(block); }
                catch (IOException) { }
            }
            // Hold until at least one checkpoint boundary has passed with the disk full (at most 3 minutes).
            Sample();
            long boundary = (_step / CheckpointEvery + 1) * CheckpointEvery;
            var until = DateTime.UtcNow.AddMinutes(3);
            while (DateTime.UtcNow < until && _step <= boundary) { Thread.Sleep(10_000); Sample(); }
        }
        finally { File.Delete(filler); }
        int failures = _all.Where(n => n.Role == "trainer").Sum(n => Regex.Matches(n.Output, "(?i)checkpoint[^\\n]*(fail|no space)").Count);
        Log($"disk freed at step {_step} (training went from {before} to {_step} while full); checkpoint-failure lines so far: {failures}");
    }

    private void CutOffDataNode()
    {
        if (_netns is not null)
        {
            var inside = _live.FirstOrDefault(n => n.InNamespace && !n.HasExited);
            if (inside is null)
            {
                // The namespaced node was killed earlier: start another there and let it take leases first.
                inside = StartNode("data", FreePort(), SeedsFor(), inNamespace: true);
                var warm = DateTime.UtcNow.AddSeconds(60);
                while (DateTime.UtcNow < warm) { Thread.Sleep(10_000); Sample(); }
            }
            Log($"cut off data node {NetnsLink.NsIp}:{inside.Port} (its network link down for 45 s) at step {_step}");
            _netns.Cut();
            var end = DateTime.UtcNow.AddSeconds(45);
            while (DateTime.UtcNow < end) { Thread.Sleep(10_000); Sample(); }
            _netns.Restore();
            Log($"link of {NetnsLink.NsIp} back up at step {_step}{(inside.HasExited ? "; the node had been downed and exited" : "")}");
            _recoveries.Add(new Recovery("cut-off data node", DateTime.UtcNow, _step, inside));
            return;
        }
        var victim = _live.FirstOrDefault(n => n.Role == "data" && !n.HasExited);
        if (victim is null) return;
        Log($"cut off data node :{victim.Port} (SIGSTOP 30 s) at step {_step}");
        victim.Signal("STOP");
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until) { Thread.Sleep(10_000); Sample(); }
        victim.Signal("CONT");
        Log($"data node :{victim.Port} back (SIGCONT) at step {_step}");
        _recoveries.Add(new Recovery("cut-off data node", DateTime.UtcNow, _step, victim));
    }

    // ------------------------------------------------------------------ observation

    private (int, string) Cli(TimeSpan timeout, params string[] verb)
    {
        foreach (var n in _live.Where(n => !n.HasExited && n.Address is not null && !n.InNamespace).OrderBy(n => n.Role == "trainer" ? 1 : 0))
        {
            var r = SoakProcess.Run(_repo, timeout, [.. verb, "--cluster", n.Address!, "--run-dir", _runDir]);
            if (r.Code == 0) return r;
        }
        return (-1, "no node answered");
    }

    private void Sample()
    {
        foreach (var n in _live) n.SampleRss();
        var (code, output) = Cli(TimeSpan.FromSeconds(30), "status");
        if (code != 0) return;
        _lastStatus = output;
        var m = Regex.Match(output, @"step\s+(\d+) /");
        if (m.Success) _step = long.Parse(m.Groups[1].Value, Inv);
        // Recovered: the replacement is Up and training has made progress since it joined (a resumed
        // trainer first reports the step of the checkpoint it resumed from).
        foreach (var r in _recoveries.Where(r => r.Seconds is null))
        {
            if (r.Replacement.Address is not { } a || !Regex.IsMatch(output, Regex.Escape(a) + @"\s+Up")) continue;
            if (r.FirstStep is null) { r.FirstStep = _step; continue; }
            if (_step > r.FirstStep)
            {
                r.Seconds = (DateTime.UtcNow - r.At).TotalSeconds;
                Log($"recovered from '{r.What}' in {r.Seconds:F0} s (step {r.StepAtKill} at the event, {r.FirstStep} when the replacement was up, now {_step})");
            }
        }
    }

    // ------------------------------------------------------------------ report

    private int Report(double minutes, double killEvery, bool tmpfs, string audit)
    {
        var whole = Regex.Match(audit, @"^whole run\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", RegexOptions.Multiline);
        var auditHead = Regex.Match(audit, @"^audit up to .*$", RegexOptions.Multiline);
        var verdict = Regex.Match(audit, @"^(OK|DEFECT):.*$", RegexOptions.Multiline);
        var checkpoints = Directory.Exists(Path.Combine(_runDir, "checkpoints"))
            ? Directory.GetDirectories(Path.Combine(_runDir, "checkpoints"), "step-*").Order().ToList() : [];
        var corrupt = new List<string>();
        foreach (var c in checkpoints)
        {
            try
            {
                var ck = CheckpointDir.Open(c);
                if (!Path.GetFileName(c).EndsWith(ck.State.Step.ToString("D8", Inv), StringComparison.Ordinal)) corrupt.Add($"{c}: step mismatch");
            }
            catch (Exception e) { corrupt.Add($"{c}: {e.Message}"); }
        }
        var b = new StringBuilder();
        b.AppendLine(Inv, $"# Soak {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        b.AppendLine();
        string where = _netns is null
            ? "on loopback (run token)"
            : $"on a host-local veth link ({NetnsLink.HostIp}; one data node in its own network namespace at {NetnsLink.NsIp}; run token, --insecure)";
        b.AppendLine(Inv, $"`litevae-bench soak --minutes {minutes} --kill-every-s {killEvery}` on {Environment.ProcessorCount} CPU cores ({Environment.MachineName}), quickstart model at 32², batch 2, checkpoint every 20 steps; coordinator+trainer, 2 data, 1 eval node {where}.");
        b.AppendLine();
        b.AppendLine("| measure | value |");
        b.AppendLine("|---|---|");
        b.AppendLine(Inv, $"| wall time | {(DateTime.UtcNow - _t0).TotalMinutes:F1} min |");
        b.AppendLine(Inv, $"| steps done | {_step} |");
        b.AppendLine(Inv, $"| restarts (kill -9 or exit) | trainer {_restarts["trainer"]}, data {_restarts["data"]}, eval {_restarts["eval"]} |");
        b.AppendLine(whole.Success
            ? $"| samples, whole run (`litevae audit`, up to the last checkpoint) | {whole.Groups[1].Value} reached: {whole.Groups[2].Value} trained once, **{whole.Groups[3].Value} twice, {whole.Groups[4].Value} never**, {whole.Groups[5].Value} bad, {whole.Groups[6].Value} ahead of the run |"
            : "| samples, whole run | (the audit gave no whole-run line: see below) |");
        b.AppendLine(Inv, $"| last status | {Regex.Match(_lastStatus, @"sample \d+: .*").Value.Trim()} |");
        b.AppendLine(Inv, $"| checkpoints on disk / corrupt | {checkpoints.Count} / **{corrupt.Count}** |");
        b.AppendLine(Inv, $"| disk full once | {(tmpfs ? "yes (run dir on its own 256 MiB tmpfs, kept full past a checkpoint boundary)" : "skipped (not root: no tmpfs)")} |");
        b.AppendLine(_netns is not null
            ? "| cut off once | a data node in its own network namespace: its link down for 45 s (a real partition), then up |"
            : "| cut off once | SIGSTOP of a data node for 30 s (what the cluster sees of a node off the network), then SIGCONT |");
        b.AppendLine();
        b.AppendLine("## Recovery per event (event → replacement Up and training past the step it had when the replacement came up)");
        b.AppendLine();
        b.AppendLine("Status is polled every ~10 s (each poll is a CLI process), so times are upper bounds with ~10 s granularity. After a trainer kill the run resumes from its last checkpoint (every 20 steps), so `step when up` is below `step at event`.");
        b.AppendLine();
        b.AppendLine("| event | step at event | step when up | recovery |");
        b.AppendLine("|---|---|---|---|");
        foreach (var r in _recoveries)
            b.AppendLine(Inv, $"| {r.What} | {r.StepAtKill} | {r.FirstStep?.ToString(Inv) ?? "-"} | {(r.Seconds is double s ? $"{s:F0} s" : "not recovered before the end")} |");
        b.AppendLine();
        b.AppendLine("## RSS per node process (MiB; slope fitted after each process's first 2 minutes)");
        b.AppendLine();
        b.AppendLine("| node | pid | lived | first → last RSS | slope |");
        b.AppendLine("|---|---|---|---|---|");
        foreach (var n in _all.Where(n => n.Role != "cli" && n.Rss.Count > 0))
        {
            var late = n.Rss.Where(x => x.Minutes >= 2).ToList();
            string slope = late.Count >= 6 ? $"{Slope(late):+0.0;-0.0} MiB/min over {late[^1].Minutes - late[0].Minutes:F1} min" : "too short to fit";
            b.AppendLine(Inv, $"| {n.Role} :{n.Port} | {n.Pid} | {n.Rss[^1].Minutes:F1} min | {n.Rss[0].RssMb:F0} → {n.Rss[^1].RssMb:F0} | {slope} |");
        }
        b.AppendLine();
        b.AppendLine("## `litevae audit` of the run directory (header, whole run, verdict; the per-epoch lines are in the run's audit)");
        b.AppendLine();
        b.AppendLine("```");
        b.AppendLine(auditHead.Success ? auditHead.Value : audit.Trim());
        if (whole.Success) b.AppendLine("epoch      reached      once     twice     never       bad     ahead").AppendLine(whole.Value);
        if (verdict.Success) b.AppendLine(verdict.Value);
        b.AppendLine("```");
        b.AppendLine();
        if (corrupt.Count > 0)
        {
            b.AppendLine("## Corrupt checkpoints");
            foreach (var c in corrupt) b.AppendLine("- " + c);
            b.AppendLine();
        }
        b.AppendLine("## Event log");
        b.AppendLine();
        b.AppendLine("```");
        foreach (var e in _events) b.AppendLine(e);
        b.AppendLine("```");
        string dir = Directory.CreateDirectory(Path.Combine(_repo, "bench", "results")).FullName;
        string path = Path.Combine(dir, $"soak-{DateTime.UtcNow:yyyyMMdd-HHmm}.md");
        File.WriteAllText(path, b.ToString());
        Console.WriteLine(b.ToString());
        Console.WriteLine($"written: {path}");
        return corrupt.Count == 0 && verdict.Value.StartsWith("OK", StringComparison.Ordinal) ? 0 : 1;
    }

    private static double Slope(List<(double X, double Y)> points)
    {
        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx == 0 ? 0 : points.Sum(p => (p.X - mx) * (p.Y - my)) / sxx;
    }

    // ------------------------------------------------------------------ helpers

    private void Log(string line)
    {
        string s = $"{(DateTime.UtcNow - _t0).TotalMinutes,6:F1} min  {line}";
        _events.Add(s);
        Console.WriteLine(s);
    }

    private static string Tail(string text, int lines) => string.Join(" | ", text.Trim().Split('\n').TakeLast(lines).Select(l => l.Trim()));

    private static double Arg(string[] args, string name, double fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], Inv) : fallback;
    }

    private static int Sh(string exe, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static string FindRepo()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "LiteVae.sln"))) return d.FullName;
        throw new InvalidOperationException("run from inside the LiteVae repository (LiteVae.sln not found)");
    }
}
