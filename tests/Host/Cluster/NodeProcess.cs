using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace LiteVae.Host.Tests.Cluster;

/// <summary>A `litevae` process started from the built Host output, with its output captured.</summary>
public sealed partial class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public string Name { get; }
    public string? Address { get; private set; }

    private NodeProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LiteVae.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("LiteVae.sln not found above the test output");
        }
    }

    public static string Exe => Path.Combine(AppContext.BaseDirectory, "litevae");

    public static NodeProcess Start(string name, params string[] args)
    {
        var psi = new ProcessStartInfo(Exe) { WorkingDirectory = RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = new NodeProcess(name, Process.Start(psi)!);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data);
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
        var m = NodeLine().Match(line);
        if (m.Success) Address = m.Groups[1].Value;
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Waits until the node printed its address.</summary>
    public string WaitForAddress(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (Address is null)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited ({_process.ExitCode}) before starting:\n{Output}");
            if (DateTime.UtcNow > until) throw new TimeoutException($"{Name} did not start in {timeout}:\n{Output}");
            Thread.Sleep(100);
        }
        return Address;
    }

    /// <summary>kill -9: no shutdown hooks, no final checkpoint.</summary>
    public void KillHard()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>kill -9 of several nodes at the same moment (none waits for another to die first).</summary>
    public static void KillHardTogether(params NodeProcess[] nodes)
    {
        foreach (var n in nodes)
            if (!n._process.HasExited) n._process.Kill(entireProcessTree: true);
        foreach (var n in nodes) n._process.WaitForExit(10_000);
    }

    /// <summary>Sends a signal by name: STOP / CONT freeze and thaw it (heartbeats stop, as in a long pause or a cut
    /// link), TERM asks it to stop.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {_process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>Waits for the process to end; when it has, its output is read to the end too.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit((int)timeout.TotalMilliseconds)) return false;
        _process.WaitForExit();
        return true;
    }

    /// <summary>Runs a short CLI command (status, eval, …) to completion.</summary>
    public static (int Code, string Output) Run(TimeSpan timeout, params string[] args)
    {
        using var p = Start("cli " + string.Join(' ', args.Take(2)), args);
        if (!p.WaitForExit(timeout))
        {
            p.KillHard();
            return (-1, p.Output + $"\n(timed out after {timeout})");
        }
        p._process.WaitForExit();   // drain the output
        return (p.ExitCode, p.Output);
    }

    /// <summary>A loopback port no one listens on right now.</summary>
    public static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        KillHard();
        _process.Dispose();
    }

    [GeneratedRegex(@"litevae node \[[^\]]*\] at (\S+:\d+)")]
    private static partial Regex NodeLine();
}
