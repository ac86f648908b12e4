using System.Diagnostics;
using System.Text;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary>
/// The real <c>litevae</c> executable as a child process (the copy next to the tests, built with them),
/// with its own environment, output captured, and killed with its children on dispose. Used where a test
/// must cross process boundaries (trace context over the wire, exporters flushing at exit).
/// </summary>
public sealed class LiteVaeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<(string Needle, TaskCompletionSource<string> Seen)> _waiters = [];

    private LiteVaeProcess(Process process) => _process = process;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public static LiteVaeProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?> env, string? workingDirectory = null)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "litevae.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"litevae.dll is not next to the tests ({dll}); the test project must reference src/Host.");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // A clean telemetry environment: only what the test sets.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList())
            psi.Environment.Remove(key);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = new LiteVaeProcess(Process.Start(psi)!);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data);
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits until a line containing <paramref name="needle"/> was printed; returns that line.</summary>
    public async Task<string> WaitForLine(string needle, TimeSpan timeout)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            var hit = _output.ToString().Split('\n').FirstOrDefault(l => l.Contains(needle, StringComparison.Ordinal));
            if (hit is not null) return hit.TrimEnd('\r');
            _waiters.Add((needle, tcs));
        }
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(tcs.Task, exited, Task.Delay(timeout));
        if (done == tcs.Task) return await tcs.Task;
        string why = done == exited ? $"exited with code {_process.ExitCode}" : $"did not print it within {timeout.TotalSeconds:F0}s";
        throw new TimeoutException($"litevae {why} before printing '{needle}'. Output:\n{Output}");
    }

    /// <summary>Waits for the process to end; returns its exit code.</summary>
    public async Task<int> WaitForExit(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"litevae still running after {timeout.TotalSeconds:F0}s. Output:\n{Output}");
        }
        _process.WaitForExit();   // drains the output readers
        return _process.ExitCode;
    }

    /// <summary>Asks the process to stop as Ctrl+C / a service manager would (SIGTERM), so it shuts down cleanly.</summary>
    public void Terminate()
    {
        if (_process.HasExited) return;
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.AppendLine(line);
            for (int i = _waiters.Count - 1; i >= 0; i--)
                if (line.Contains(_waiters[i].Needle, StringComparison.Ordinal))
                {
                    _waiters[i].Seen.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
        }
    }
}
