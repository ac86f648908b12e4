namespace LiteVae.Model.Checkpoints;

/// <summary>
/// The receiving side of a checkpoint copied from another node, on disk. Files arrive in chunks into
/// <c>checkpoints/.part-step-NNNNNNNN-&lt;fingerprint&gt;/</c>, which survives a broken transfer (and a restart of this
/// process): the next attempt asks for each file from the length already on disk. Readers never see it (they list
/// <c>step-*</c> only) and a checkpoint write leaves it alone (it removes <c>.tmp-*</c> only). <see cref="Finish"/>
/// checks every file against the manifest (size, SHA-256), flushes the files and the folder to disk and renames the
/// folder into place with <see cref="CheckpointStore.Adopt"/>: a checkpoint on disk is complete or absent, whichever
/// node wrote it first.
/// </summary>
public sealed class CheckpointDownload
{
    private const string PartPrefix = ".part-";

    private CheckpointDownload(string checkpointsDir, long step, IReadOnlyList<FileDigest> files, string folder)
    {
        (CheckpointsDir, Step, Files, Folder) = (checkpointsDir, step, files, folder);
    }

    public string CheckpointsDir { get; }
    public long Step { get; }
    public IReadOnlyList<FileDigest> Files { get; }

    /// <summary>The partial folder the chunks go into.</summary>
    public string Folder { get; }

    /// <summary>Opens (or continues) the partial copy of the checkpoint of <paramref name="step"/> that
    /// <paramref name="files"/> describe. Partial copies of other checkpoints of the same step are removed.</summary>
    public static CheckpointDownload Begin(string checkpointsDir, long step, IReadOnlyList<FileDigest> files)
    {
        if (files.Count == 0 || files.All(f => f.Name != CheckpointStore.StateFile))
            throw new InvalidDataException($"checkpoint of step {step}: the sender's manifest lists no {CheckpointStore.StateFile}; it is not a checkpoint.");
        foreach (var f in files)
            if (!CheckpointManifest.IsPlainName(f.Name) || f.Size < 0)
                throw new InvalidDataException($"checkpoint of step {step}: the sender's manifest names '{f.Name}' ({f.Size} bytes), not a plain file name.");
        Directory.CreateDirectory(checkpointsDir);
        string prefix = $"{PartPrefix}{CheckpointStore.StepDirName(step)}-";
        string folder = Path.Combine(checkpointsDir, prefix + CheckpointManifest.Fingerprint(files));
        foreach (var other in Directory.EnumerateDirectories(checkpointsDir, prefix + "*"))
            if (other != folder) Directory.Delete(other, recursive: true);
        Directory.CreateDirectory(folder);
        return new CheckpointDownload(checkpointsDir, step, files, folder);
    }

    private FileDigest Digest(string file) =>
        Files.FirstOrDefault(f => f.Name == file) ?? throw new InvalidDataException($"{Folder}: '{file}' is not in the checkpoint's manifest.");

    /// <summary>Bytes of <paramref name="file"/> already received (what the next request asks from).</summary>
    public long Have(string file)
    {
        var info = new FileInfo(Path.Combine(Folder, file));
        if (!info.Exists) return 0;
        if (info.Length <= Digest(file).Size) return info.Length;
        File.Delete(info.FullName);   // longer than the checkpoint's file: not a copy of it
        return 0;
    }

    /// <summary>The first file not yet fully received, or null when every byte is here.</summary>
    public FileDigest? NextIncomplete() => Files.FirstOrDefault(f => Have(f.Name) < f.Size);

    /// <summary>Writes a chunk at <paramref name="offset"/>, which must be where the file stands (chunks come in order).</summary>
    public void Append(string file, long offset, ReadOnlySpan<byte> data)
    {
        var digest = Digest(file);
        long have = Have(file);
        if (offset != have)
            throw new InvalidDataException($"{Path.Combine(Folder, file)}: a chunk at byte {offset} arrived, but {have} bytes are on disk.");
        if (offset + data.Length > digest.Size)
            throw new InvalidDataException($"{Path.Combine(Folder, file)}: a chunk ends at byte {offset + data.Length}, past the file's {digest.Size}.");
        using var stream = new FileStream(Path.Combine(Folder, file), FileMode.Append, FileAccess.Write, FileShare.None);
        stream.Write(data);
    }

    /// <summary>Checks every file against the manifest, flushes them to disk and renames the folder into place; returns
    /// the new step directory. A file whose bytes differ is deleted (the next attempt fetches it again) and named in the
    /// exception.</summary>
    public string Finish(RetentionPolicy retention)
    {
        foreach (var f in Files)
        {
            string path = Path.Combine(Folder, f.Name);
            long have = Have(f.Name);
            if (have != f.Size)
                throw new InvalidDataException($"{path}: {have} of {f.Size} bytes received; the copy is incomplete.");
            string sha = CheckpointManifest.Sha256Of(path);
            if (sha != f.Sha256)
            {
                File.Delete(path);
                throw new InvalidDataException($"{path}: SHA-256 {sha[..12]}… differs from the sender's {f.Sha256[..12]}…; " +
                                               "the received copy is damaged and was deleted (it is fetched again).");
            }
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            stream.Flush(flushToDisk: true);
        }
        // Anything else in the folder (an earlier manifest's leftovers cannot be here: the fingerprint names it) goes.
        foreach (var extra in Directory.EnumerateFiles(Folder).Where(p => Files.All(f => f.Name != Path.GetFileName(p))))
            File.Delete(extra);
        return CheckpointStore.Adopt(CheckpointsDir, Folder, Step, retention);
    }

    /// <summary>Drops the partial copy (the transfer is abandoned).</summary>
    public void Abandon()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
