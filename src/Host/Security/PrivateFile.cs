namespace LiteVae.Host.Security;

/// <summary>
/// Writes files that hold secrets (private keys, run tokens) so that only their owner can read them:
/// created with mode 0600 from the first byte (never written world-readable and chmod-ed later), through
/// a temp file renamed over the target so a reader never sees half a key.
/// </summary>
public static class PrivateFile
{
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode PublicRead = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public static void WriteSecret(string path, ReadOnlySpan<byte> bytes) => Write(path, bytes, OwnerOnly);

    public static void WritePublic(string path, ReadOnlySpan<byte> bytes) => Write(path, bytes, PublicRead);

    /// <summary>Creates <paramref name="dir"/> as 0700 if it does not exist (an existing folder keeps its mode).</summary>
    public static void EnsurePrivateDirectory(string dir)
    {
        if (Directory.Exists(dir)) return;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir);
        else Directory.CreateDirectory(dir, OwnerOnlyDirectory);
    }

    private static void Write(string path, ReadOnlySpan<byte> bytes, UnixFileMode mode)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = mode;
        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            // The umask can only have removed bits; set the exact mode so a 0644 request is honoured too.
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, mode);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// Reads a secret file, refusing one that other users can read or write (like ssh does with keys):
    /// a secret anyone on the machine can read is no secret, and the user should know.
    /// </summary>
    public static byte[] ReadSecret(string path, string what)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: {what} not found.", path);
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & others) != 0)
                throw new UnauthorizedAccessException(
                    $"{path}: {what} is readable or writable by other users (mode {Octal(mode)}); run `chmod 600 {path}` and try again.");
        }
        return File.ReadAllBytes(path);
    }

    public static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');
}
