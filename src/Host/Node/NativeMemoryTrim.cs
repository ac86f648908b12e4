using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;

namespace LiteVae.Host.Node;

/// <summary>
/// Hands memory that native code has freed back to the OS now and then (glibc's <c>malloc_trim(0)</c>).
///
/// Why: glibc keeps freed blocks in its malloc arenas (one per thread that allocated, up to 8 per core) and
/// returns only a free top of each heap. A long-lived node whose peers come and go (threads, sockets, decode
/// buffers allocated and freed on ever other threads) then grows in RSS without a leak. Measured on a data node
/// under trainer churn (bench/results/README.md, "Node memory: found"): malloc held 35.0 MB from the OS with
/// 7.4 MB in use, and one <c>malloc_trim(0)</c> took RSS from 156.7 to 133.9 MiB. Trimming walks the arenas in a
/// millisecond or so, once a minute by default (<c>litevae.node.malloc-trim-s</c>; 0 = never). On a C library
/// without <c>malloc_trim</c> (musl) it switches itself off.
/// </summary>
public sealed class NativeMemoryTrim(TimeSpan interval) : BackgroundService
{
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>One trim; false when this C library has none (then never call again).</summary>
    public static bool TryTrim()
    {
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (interval <= TimeSpan.Zero || !OperatingSystem.IsLinux()) return;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                if (!TryTrim()) return;
        }
        catch (OperationCanceledException)
        {
            // the host is stopping
        }
    }
}
