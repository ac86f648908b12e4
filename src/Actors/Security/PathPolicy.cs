using System.Runtime.InteropServices;

namespace LiteVae.Actors.Security;

/// <summary>A path in a command that points outside what the cluster may touch, or is malformed.</summary>
public sealed class PathRefusedException(string message) : Exception(message);

/// <summary>
/// Where paths that arrive in commands may point: inside the run directory or inside one of the
/// allow-listed data roots, and nowhere else. A path in a command is a file read on someone's machine, so
/// it is resolved the way the kernel would open it (every symbolic link followed, <c>realpath</c>) and the
/// result must still be inside a root: <c>..</c> segments are refused outright and a link inside a root
/// that points out of it is an escape like any other. Relative paths are relative to the run directory.
/// </summary>
public sealed class PathPolicy
{
    public const int MaxPathChars = 4096;

    private readonly IReadOnlyList<string> _roots;

    public PathPolicy(string runDir, IEnumerable<string> dataRoots)
    {
        RunDir = RealPath(Path.GetFullPath(runDir));
        _roots = new[] { RunDir }.Concat(dataRoots.Where(r => r != "").Select(r => RealPath(Path.GetFullPath(r)))).Distinct().ToList();
    }

    public string RunDir { get; }

    public IReadOnlyList<string> Roots => _roots;

    /// <summary>The real, absolute path <paramref name="requested"/> names, if it lies inside a root.</summary>
    /// <param name="what">How the command calls it (e.g. "checkpoint"), for the error message.</param>
    public string Resolve(string requested, string what)
    {
        if (string.IsNullOrWhiteSpace(requested))
            throw new PathRefusedException($"{what}: empty path.");
        if (requested.Length > MaxPathChars)
            throw new PathRefusedException($"{what}: path of {requested.Length} characters is longer than the limit of {MaxPathChars}.");
        if (requested.Any(char.IsControl))
            throw new PathRefusedException($"{what}: path contains control characters.");
        if (requested.Split('/', '\\').Any(s => s == ".."))
            throw new PathRefusedException($"{what}: '{Short(requested)}' contains '..'; paths in commands must stay inside the run directory or a data root.");
        string full = Path.GetFullPath(Path.IsPathRooted(requested) ? requested : Path.Combine(RunDir, requested));
        string real = RealPath(full);
        foreach (var root in _roots)
            if (IsInside(real, root))
                return real;
        bool lexicallyInside = _roots.Any(r => IsInside(full, r));
        throw new PathRefusedException(lexicallyInside
            ? $"{what}: '{Short(requested)}' leads through a symbolic link to {Short(real)}, outside the run directory and the data roots; refused."
            : $"{what}: '{Short(requested)}' is outside the run directory ({RunDir}) and the allowed data roots " +
              $"({(_roots.Count > 1 ? string.Join(", ", _roots.Skip(1)) : "none")}); to allow it, add its folder to litevae.security.data-roots " +
              $"on the coordinator's node, e.g. --set 'litevae.security.data-roots=[\"{Short(Path.GetDirectoryName(full) ?? full)}\"]'.");
    }

    public const int MaxShardsInSpec = 100_000;

    /// <summary>
    /// A shard list in a command (eval --data): a file, a folder, or a brace pattern like
    /// <c>eval-{0000..0007}.tar</c>. URLs are refused (a command must not make a node fetch from wherever it
    /// says; put URLs in the experiment config); every path the pattern names must resolve inside a root.
    /// </summary>
    /// <returns>The spec made absolute (relative specs are relative to the run directory, wherever the job runs).</returns>
    public string CheckShardSpec(string spec, string what)
    {
        if (spec.Contains("://", StringComparison.Ordinal))
            throw new PathRefusedException($"{what}: URLs are not accepted in commands; name them in the experiment config instead.");
        if (spec.Length > MaxPathChars)
            throw new PathRefusedException($"{what}: path of {spec.Length} characters is longer than the limit of {MaxPathChars}.");
        string absolute = Path.IsPathRooted(spec) ? spec : Path.Combine(RunDir, spec);
        var m = System.Text.RegularExpressions.Regex.Match(spec, @"\{(?<lo>\d{1,9})\.\.(?<hi>\d{1,9})\}");
        if (!m.Success)
        {
            Resolve(spec, what);
            return absolute;
        }
        long lo = long.Parse(m.Groups["lo"].Value), hi = long.Parse(m.Groups["hi"].Value);
        if (hi < lo || hi - lo >= MaxShardsInSpec)
            throw new PathRefusedException($"{what}: the pattern names {hi - lo + 1} shards; at most {MaxShardsInSpec} are accepted.");
        for (long i = lo; i <= hi; i++)
            Resolve(spec[..m.Index] + i.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(m.Groups["lo"].Length, '0')
                    + spec[(m.Index + m.Length)..], what);
        return absolute;
    }

    private static bool IsInside(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal);

    private static string Short(string s) => s.Length <= 200 ? s : s[..200] + "…";

    /// <summary>
    /// The canonical path with every link resolved. For a path that does not exist yet, the deepest
    /// existing ancestor is resolved and the rest appended (it cannot contain links: it does not exist).
    /// </summary>
    public static string RealPath(string absolute)
    {
        string existing = absolute, rest = "";
        while (!Path.Exists(existing))
        {
            if (new FileInfo(existing).LinkTarget is not null)
                throw new PathRefusedException($"'{existing}' is a dangling symbolic link; refused.");
            string? parent = Path.GetDirectoryName(existing);
            if (parent is null) return absolute;
            rest = rest == "" ? Path.GetFileName(existing) : Path.Combine(Path.GetFileName(existing), rest);
            existing = parent;
        }
        string resolved = OperatingSystem.IsWindows() ? existing
            : LibcRealPath(existing) ?? throw new PathRefusedException($"'{existing}' cannot be resolved (a dangling symbolic link, or no permission); refused.");
        return rest == "" ? resolved : Path.Combine(resolved, rest);
    }

    private static string? LibcRealPath(string path)
    {
        IntPtr p = realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr p);
}
