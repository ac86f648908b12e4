using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace LiteVae.Bench.Soak;

/// <summary>One `litevae` process of the soak (a node or a short CLI command), output captured.</summary>
internal sealed partial class SoakProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public string Role { get; }
    public int Port { get; }
    public DateTime Started { get; } = DateTime.UtcNow;
    public string? Address { get; private set; }
    public bool InNamespace { get; private init; }
    public List<(double Minutes, double RssMb)> Rss { get; } = [];

    private SoakProcess(string role, int port, Process process) => (Role, Port, _process) = (role, port, process);

    public static string Exe => Path.Combine(AppContext.BaseDirectory, "litevae");

    /// <param name="netns">Run inside this namespace (the node that will be cut off), or on the host.</param>
    public static SoakProcess Start(string role, int port, string workDir, IEnumerable<string> args, NetnsLink? netns = null)
    {
        var (exe, argv) = netns is null ? (Exe, args.ToArray()) : netns.Inside(Exe, args);
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in argv) psi.ArgumentList.Add(a);
        var p = new SoakProcess(role, port, Process.Start(psi)!) { InNamespace = netns is not null };
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
    public int Pid => _process.Id;

    /// <summary>Resident memory from /proc (MiB), or null once the process is gone.</summary>
    public double? SampleRss()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    double mb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
                    Rss.Add(((DateTime.UtcNow - Started).TotalMinutes, mb));
                    return mb;
                }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    public void KillHard()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public void Signal(string signal) => Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();

    public bool WaitForExit(TimeSpan t) => _process.WaitForExit((int)t.TotalMilliseconds);

    public static (int Code, string Output) Run(string workDir, TimeSpan timeout, params string[] args)
    {
        using var p = Start("cli", 0, workDir, args);
        if (!p.WaitForExit(timeout))
        {
            p.KillHard();
            return (-1, p.Output + "\n(timed out)");
        }
        p._process.WaitForExit();
        return (p._process.ExitCode, p.Output);
    }

    public void Dispose()
    {
        KillHard();
        _process.Dispose();
    }

    [GeneratedRegex(@"litevae node \[[^\]]*\] at (\S+:\d+)")]
    private static partial Regex NodeLine();
}
