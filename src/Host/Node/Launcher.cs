using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Config;
using LiteVae.Host.Security;

namespace LiteVae.Host.Node;

/// <summary>
/// One trainer process per device on this host (<c>litevae launch</c>). A new run: the first process is
/// <c>litevae train</c> (coordinator, data, eval and the trainer of the first device, with its progress line and
/// its end once the run is done and its final checkpoint evaluated) listening on a port the kernel picks; the
/// others are trainer nodes that join it by the address it prints, so nothing collides with another run on the
/// host, and they are stopped when it has ended. Joining a cluster (a seed given): every process is a trainer
/// node. Each process sees only its own GPU (CUDA_VISIBLE_DEVICES), so <c>trainer.device = auto</c> means it.
/// Ctrl+C / SIGTERM asks the coordinator to stop the run (final checkpoint, then every node leaves), as
/// <c>litevae stop</c> does; a second signal sends SIGTERM to every process, a third kills them.
/// </summary>
public sealed partial class Launcher
{
    /// <param name="Devices">A CUDA device id per process, or null entries for CPU processes.</param>
    /// <param name="Seed">host:port of a running cluster to join with trainer nodes; null starts a new run here.</param>
    /// <param name="NodeSets">--set lines for every node (litevae.*, akka.*).</param>
    /// <param name="ExperimentSets">--set lines for the experiment (new run only).</param>
    /// <param name="RunDir">The run directory (a new run's, or the joined cluster's for its run token); null: none.</param>
    public sealed record Plan(IReadOnlyList<string?> Devices, string? Seed, string? Config, string? RunDir,
        IReadOnlyList<string> NodeSets, IReadOnlyList<string> ExperimentSets, string? Otlp);

    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);
    private const int SigtermExit = 128 + 15;
    private readonly Plan _plan;
    private readonly List<Child> _children = [];
    private int _signals;

    public Launcher(Plan plan) => _plan = plan;

    /// <summary>Starts the processes, relays their output with a [name] prefix, waits for all of them to end.</summary>
    /// <returns>0 when every process stopped cleanly, else the first process's non-zero exit code.</returns>
    public int Run()
    {
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        int n = _plan.Devices.Count;
        string group = $"litevae.distributed.trainers={n}";
        Child? head = null;
        try
        {
            string seed;
            int first = 0;
            if (_plan.Seed is null)
            {
                head = Start(Name(0), _plan.Devices[0], ["train", .. Sets([group, "litevae.node.port=0"]), .. Config()]);
                seed = head.WaitForAddress(StartTimeout);
                first = 1;
            }
            else seed = _plan.Seed;
            for (int i = first; i < n; i++)
                Start(Name(i), _plan.Devices[i], ["node", "--hocon", Preset("trainer-node.conf"),
                    .. Sets([.. _plan.Seed is null ? new[] { group } : [], "litevae.node.port=0", $"litevae.node.seed-nodes=[\"{seed}\"]"])]);
            Console.WriteLine($"launch: {n} trainer process(es) on {string.Join(", ", _plan.Devices.Select(d => d is null ? "cpu" : $"GPU {d}"))}, " +
                              $"cluster at {seed}" + (_plan.RunDir is null ? "" : $", run {_plan.RunDir}"));
        }
        catch (Exception) { StopAll(kill: true); throw; }
        if (head is not null)
        {
            // The run is over when `train` has ended. After a stop the trainer nodes were asked to leave and end by
            // themselves; after the step budget they would wait for a coordinator forever, so they get SIGTERM.
            head.Process.WaitForExit();
            foreach (var c in _children) c.Process.WaitForExit(TimeSpan.FromSeconds(15));
            StopAll(kill: false);
        }
        foreach (var c in _children) c.Process.WaitForExit();
        foreach (var c in _children)
            Console.WriteLine($"launch: {c.Name} exited with code {c.Process.ExitCode}" + (c.Terminated && c.Process.ExitCode == SigtermExit ? " (SIGTERM from launch)" : ""));
        // A process this launcher terminated while it was already shutting down may end by the signal itself.
        var failed = _children.FirstOrDefault(c => c.Process.ExitCode != 0 && !(c.Terminated && c.Process.ExitCode == SigtermExit));
        return failed?.Process.ExitCode ?? 0;
    }

    private string Name(int i) => _plan.Devices[i] is { } d ? $"gpu{d}" : $"cpu{i}";

    private static string Preset(string name) => Path.Combine(AppContext.BaseDirectory, "hocon", name);

    /// <summary>The node --set lines every process gets: this launch's, then the user's (which win).</summary>
    private IEnumerable<string> Sets(IEnumerable<string> own) =>
        own.Concat(_plan.RunDir is null ? [] : [$"litevae.run.run-dir={System.Text.Json.JsonSerializer.Serialize(_plan.RunDir)}"])
           .Concat(_plan.NodeSets).SelectMany(s => new[] { "--set", s });

    /// <summary>`train`'s experiment: a new run's config, or the run directory to resume.</summary>
    private IEnumerable<string> Config() =>
        (_plan.Config is null ? new[] { "--resume", _plan.RunDir! } : ["--config", _plan.Config])
        .Concat(_plan.ExperimentSets.SelectMany(s => new[] { "--set", s }));

    private Child Start(string name, string? device, IEnumerable<string> args)
    {
        var psi = SelfStartInfo();
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (_plan.Otlp is not null) { psi.ArgumentList.Add("--otlp"); psi.ArgumentList.Add(_plan.Otlp); }
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        if (device is not null) psi.Environment["CUDA_VISIBLE_DEVICES"] = device;
        var child = new Child(name, Process.Start(psi) ?? throw new InvalidOperationException($"launch: could not start {psi.FileName}"));
        lock (_children) _children.Add(child);
        child.Process.OutputDataReceived += (_, e) => child.Relay(e.Data, Console.Out);
        child.Process.ErrorDataReceived += (_, e) => child.Relay(e.Data, Console.Error);
        child.Process.BeginOutputReadLine();
        child.Process.BeginErrorReadLine();
        return child;
    }

    /// <summary>This program again: the apphost, or <c>dotnet litevae.dll</c> when run that way.</summary>
    private static ProcessStartInfo SelfStartInfo()
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("launch: cannot tell which executable this is");
        if (Path.GetFileNameWithoutExtension(host) != "dotnet") return new ProcessStartInfo(host);
        var psi = new ProcessStartInfo(host);
        psi.ArgumentList.Add(typeof(Launcher).Assembly.Location);
        return psi;
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;   // this process stays until its children have ended
        int count = Interlocked.Increment(ref _signals);
        Child? head;
        lock (_children) head = _plan.Seed is null ? _children.FirstOrDefault() : null;   // may come while processes start
        if (count == 1 && head is { Address: { } address })
        {
            Console.WriteLine("launch: stopping the run (final checkpoint, then every node leaves); again to terminate the processes");
            _ = Task.Run(() => RequestStop(address));
        }
        else StopAll(kill: count >= 3);
    }

    private async Task RequestStop(string address)
    {
        try
        {
            // Traced like `litevae stop`: the coordinator's stop and the final checkpoint join this command's trace.
            using var trace = Telemetry.CommandTrace.Start("launch", "stop", _plan.Otlp, [new(Actors.Telemetry.TelemetryTags.Peer, address)]);
            await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), ClientCredentials.From(null, null, null, _plan.RunDir));
            var stopped = await client.AskAsync<ClientProtocol.RunStopped>(new ClientProtocol.RequestStop(trace.TraceParent), TimeSpan.FromMinutes(5));
            Console.WriteLine($"launch: run stopped at step {stopped.Step}" + (stopped.CheckpointPath is null ? "" : $", checkpoint {stopped.CheckpointPath}"));
        }
        catch (Exception e) when (e is ConfigException or TimeoutException or IOException)
        {
            Console.Error.WriteLine($"launch: the coordinator did not stop the run ({e.Message}); terminating the processes");
            StopAll(kill: false);
        }
    }

    private void StopAll(bool kill)
    {
        lock (_children)
            foreach (var c in _children.Where(c => !c.Process.HasExited))
            {
                c.Terminated = true;
                if (kill) c.Process.Kill(entireProcessTree: true);
                else Terminate(c.Process.Id);
            }
    }

    private static void Terminate(int pid)
    {
        if (kill(pid, 15) != 0) Console.Error.WriteLine($"launch: SIGTERM to process {pid} failed (errno {Marshal.GetLastPInvokeError()})");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>A node process; its address is read from the line every node prints when it listens.</summary>
    private sealed partial class Child(string name, Process process)
    {
        private readonly TaskCompletionSource<string> _address = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Name => name;
        public Process Process => process;
        public string? Address => _address.Task.IsCompletedSuccessfully ? _address.Task.Result : null;
        /// <summary>This launcher sent it SIGTERM (or killed it).</summary>
        public bool Terminated { get; set; }

        public void Relay(string? line, TextWriter to)
        {
            if (line is null) return;
            if (NodeLine().Match(line) is { Success: true } m) _address.TrySetResult(m.Groups[1].Value);
            lock (Console.Out) to.WriteLine($"[{name}] {line}");
        }

        public string WaitForAddress(TimeSpan timeout)
        {
            var exited = Task.Run(() => process.WaitForExit());
            var done = Task.WhenAny(_address.Task, exited, Task.Delay(timeout)).GetAwaiter().GetResult();
            if (done == _address.Task) return _address.Task.Result;
            throw new ConfigException(process.HasExited
                ? $"launch: {name} exited with code {process.ExitCode} before it listened (its output is above)"
                : $"launch: {name} did not start listening within {timeout.TotalSeconds:F0} s");
        }

        [GeneratedRegex(@"litevae node \[[^\]]*\] at (\S+:\d+)")]
        private static partial Regex NodeLine();
    }
}
