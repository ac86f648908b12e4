using System.Runtime.InteropServices;
using LiteVae.Host.Node;

namespace LiteVae.Host.Tests.Node;

/// <summary>What the node's periodic trim is for: freed malloc memory that glibc keeps is resident until trimmed.</summary>
public class NativeMemoryTrimTests
{
    [Fact]
    public void A_trim_returns_freed_malloc_memory_that_glibc_kept_resident()
    {
        Assert.True(OperatingSystem.IsLinux(), "this test reads /proc/self/status");
        const int block = 64 << 10;                 // below glibc's mmap threshold: served from the heap
        const long total = 256L << 20;
        var ones = Enumerable.Repeat((byte)1, block).ToArray();
        var blocks = new List<IntPtr>();
        for (long n = 0; n < total; n += block)
        {
            var p = Marshal.AllocHGlobal(block);    // malloc
            Marshal.Copy(ones, 0, p, block);        // touch it: resident
            blocks.Add(p);
        }
        var pin = Marshal.AllocHGlobal(block);      // above them: the freed space is not the heap's free top
        foreach (var p in blocks) Marshal.FreeHGlobal(p);
        try
        {
            long before = ResidentBytes();
            Assert.True(NativeMemoryTrim.TryTrim(), "glibc has malloc_trim");
            long after = ResidentBytes();
            // 256 MiB were freed but kept; other tests of this process allocate too, so ask for half of it back.
            Assert.True(before - after >= total / 2, $"RSS {before >> 20} MiB before the trim, {after >> 20} MiB after: expected at least {total / 2 >> 20} MiB back");
        }
        finally
        {
            Marshal.FreeHGlobal(pin);
        }
    }

    private static long ResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }
}
