using System.Security.Cryptography;

namespace LiteVae.Model.Checkpoints;

/// <summary>One file of a checkpoint as a peer must receive it: its name inside the step directory, size and SHA-256 (hex).</summary>
public sealed record FileDigest(string Name, long Size, string Sha256);

/// <summary>
/// What a complete checkpoint directory holds, file by file with size and SHA-256: <c>trainer-state.json</c> and every
/// file it lists. A copy is the same checkpoint when its manifest is the same; the transfer between nodes sends it
/// first and checks each received file against it before the copy may become a checkpoint.
/// </summary>
public static class CheckpointManifest
{
    /// <summary>The manifest of a complete step directory (links followed); throws like <see cref="CheckpointDir.Open"/>
    /// when the checkpoint is incomplete or damaged.</summary>
    public static IReadOnlyList<FileDigest> Of(string stepDir)
    {
        var checkpoint = CheckpointDir.Open(stepDir);
        var names = checkpoint.State.Files.Keys.Append(CheckpointStore.StateFile).Distinct().Order(StringComparer.Ordinal);
        return names.Select(n =>
        {
            string path = Path.Combine(checkpoint.Path, n);
            return new FileDigest(n, new FileInfo(path).Length, Sha256Of(path));
        }).ToList();
    }

    /// <summary>True when <paramref name="stepDir"/> holds exactly these files' bytes (a shared disk, or a copy made earlier).</summary>
    public static bool Matches(string stepDir, IReadOnlyList<FileDigest> files)
    {
        if (!Directory.Exists(stepDir) || !File.Exists(Path.Combine(stepDir, CheckpointStore.StateFile))) return false;
        try
        {
            // Sizes first: a mismatch is found without reading gigabytes.
            foreach (var f in files)
            {
                var info = new FileInfo(Path.Combine(stepDir, f.Name));
                if (!info.Exists || info.Length != f.Size) return false;
            }
            return files.All(f => Sha256Of(Path.Combine(stepDir, f.Name)) == f.Sha256);
        }
        catch (IOException) { return false; }
    }

    public static string Sha256Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>A short name for one manifest (16 hex digits): partial copies of two different checkpoints of the same
    /// step (a step saved again after a resume) never mix.</summary>
    public static string Fingerprint(IReadOnlyList<FileDigest> files) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            string.Join('\n', files.Select(f => $"{f.Name}\t{f.Size}\t{f.Sha256}")))))[..16];

    /// <summary>A file name a manifest may carry: a plain name inside the step directory, never a path.</summary>
    public static bool IsPlainName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0;
}
