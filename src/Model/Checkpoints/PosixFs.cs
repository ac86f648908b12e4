using System.Runtime.InteropServices;

namespace LiteVae.Model.Checkpoints;

/// <summary>
/// The few POSIX calls atomic checkpoints need and .NET does not expose: rename(2) of a symlink
/// (File.Move follows links) and fsync of a directory (so a rename survives a power cut).
/// </summary>
internal static class PosixFs
{
    [DllImport("libc", SetLastError = true, EntryPoint = "rename")]
    private static extern int SysRename(string oldPath, string newPath);

    [DllImport("libc", SetLastError = true, EntryPoint = "open")]
    private static extern int SysOpen(string path, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "fsync")]
    private static extern int SysFsync(int fd);

    [DllImport("libc", SetLastError = true, EntryPoint = "close")]
    private static extern int SysClose(int fd);

    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000; // Linux value

    /// <summary>Atomically renames a file, directory or symlink (replacing a symlink or file at the target).</summary>
    public static void Rename(string from, string to)
    {
        if (!OperatingSystem.IsLinux())
        {
            if (Directory.Exists(from) && !IsLink(from)) Directory.Move(from, to);
            else File.Move(from, to, overwrite: true);
            return;
        }
        if (SysRename(from, to) != 0)
            throw new IOException($"rename {from} → {to} failed: {Marshal.GetLastPInvokeErrorMessage()}.");
    }

    /// <summary>Flushes a directory's entries to disk (after creating or renaming something in it).</summary>
    public static void FsyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux()) return;
        int fd = SysOpen(dir, ORdOnly | ODirectory);
        if (fd < 0)
            throw new IOException($"cannot open directory {dir} to flush it: {Marshal.GetLastPInvokeErrorMessage()}.");
        try
        {
            if (SysFsync(fd) != 0)
                throw new IOException($"fsync of directory {dir} failed: {Marshal.GetLastPInvokeErrorMessage()}.");
        }
        finally
        {
            SysClose(fd);
        }
    }

    public static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    /// <summary>Writes a small text file and flushes it to disk.</summary>
    public static void WriteTextDurably(string path, string text)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }
}
