using System.Globalization;

namespace LiteVae.Model.Checkpoints;

/// <summary>How many checkpoints to keep: the newest <see cref="KeepLast"/> and, if asked, the best.</summary>
public sealed record RetentionPolicy(int KeepLast = 3, bool KeepBest = true)
{
    public void Validate()
    {
        if (KeepLast < 1)
            throw new ArgumentException($"keep-last must be at least 1, got {KeepLast}.");
    }
}

/// <summary>
/// Writes checkpoints into <c>&lt;run&gt;/checkpoints/</c> so that a checkpoint on disk is always
/// complete or absent, whenever the process dies:
/// <list type="number">
/// <item>every file goes into a fresh <c>.tmp-…</c> directory and is fsynced;</item>
/// <item>the directory is fsynced and renamed to <c>step-NNNNNNNN</c> (rename is atomic), then the
///   parent is fsynced;</item>
/// <item><c>last</c> (and <c>best</c>) are symlinks to a step directory, replaced by renaming a new
///   symlink over them (atomic too), so <c>checkpoints/last/model.safetensors</c> is always a real,
///   complete file for us, for PyTorch and for a user;</item>
/// <item>older step directories beyond the retention policy are renamed to <c>.tmp-…</c> and then
///   deleted, so a half-deleted directory never looks like a checkpoint.</item>
/// </list>
/// Leftover <c>.tmp-…</c> directories (from a killed write) are ignored by readers and removed by the
/// next write.
/// <para>A checkpoint that an evaluation waits for or reads is <em>pinned</em> (an empty file in
/// <c>checkpoints/pins/</c>) and retention keeps it until the pin goes: with frequent checkpoints and a
/// small keep-last, "evaluate last" would otherwise race the writer that deletes it. Pinning and retention
/// hold the same file lock (<c>checkpoints/.lock</c>), so a checkpoint is either pinned while still
/// complete or the pin is refused; nothing is deleted between the two.</para>
/// </summary>
public static class CheckpointStore
{
    public const string LastLink = "last";
    public const string BestLink = "best";
    public const string StateFile = "trainer-state.json";
    public const string ConfigFile = "config.conf";
    public const string PinsDir = "pins";
    private const string TempPrefix = ".tmp-";
    private const string LockFile = ".lock";
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(60);

    public static string StepDirName(long step) => $"step-{step.ToString("D8", CultureInfo.InvariantCulture)}";

    /// <summary>Writes the snapshot and applies retention; returns the new step directory.</summary>
    /// <param name="afterEachFile">Called with each file's path once it is written and flushed
    /// (progress reporting; tests use it to kill the process mid-write).</param>
    public static string Write(string checkpointsDir, CheckpointSnapshot snapshot, RetentionPolicy retention,
        Action<string>? afterEachFile = null)
    {
        retention.Validate();
        Directory.CreateDirectory(checkpointsDir);
        RemoveTemps(checkpointsDir);

        long step = snapshot.State.Step;
        string temp = Path.Combine(checkpointsDir, $"{TempPrefix}{StepDirName(step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        var sizes = new Dictionary<string, long>();
        foreach (var file in snapshot.Files)
        {
            string path = Path.Combine(temp, file.FileName);
            Safetensors.Save(path, file.Tensors, file.Metadata); // flushes to disk
            sizes[file.FileName] = new FileInfo(path).Length;
            afterEachFile?.Invoke(path);
        }
        string configPath = Path.Combine(temp, ConfigFile);
        PosixFs.WriteTextDurably(configPath, snapshot.ConfigText);
        sizes[ConfigFile] = new FileInfo(configPath).Length;
        afterEachFile?.Invoke(configPath);

        // The state names every other file with its size; it is written last.
        var state = snapshot.State with { Files = sizes };
        string statePath = Path.Combine(temp, StateFile);
        PosixFs.WriteTextDurably(statePath, state.ToJson());
        afterEachFile?.Invoke(statePath);
        return Publish(checkpointsDir, temp, step, retention, pointLast: true);
    }

    /// <summary>
    /// Makes a complete folder that another node's checkpoint was copied into (every file written and flushed, see
    /// <see cref="CheckpointDownload"/>) the checkpoint of <paramref name="step"/> here, as <see cref="Write"/> does with
    /// its own: fsync, rename into place, <c>last</c> (unless a newer step is already here), <c>best</c>, retention.
    /// </summary>
    public static string Adopt(string checkpointsDir, string completeFolder, long step, RetentionPolicy retention)
    {
        retention.Validate();
        bool newest = List(checkpointsDir).All(c => c.Step <= step);
        return Publish(checkpointsDir, completeFolder, step, retention, pointLast: newest);
    }

    private static string Publish(string checkpointsDir, string temp, long step, RetentionPolicy retention, bool pointLast)
    {
        PosixFs.FsyncDirectory(temp);

        string final = Path.Combine(checkpointsDir, StepDirName(step));
        if (Directory.Exists(final))
            Discard(checkpointsDir, final); // a re-save of the same step replaces the old one
        PosixFs.Rename(temp, final);
        PosixFs.FsyncDirectory(checkpointsDir);

        if (pointLast)
            PointLink(checkpointsDir, LastLink, StepDirName(step));
        if (retention.KeepBest)
            UpdateBest(checkpointsDir);
        // The checkpoint just published stays even when older than the kept ones (a copy of an old step fetched to evaluate it).
        ApplyRetention(checkpointsDir, retention, StepDirName(step));
        return final;
    }

    /// <summary>Complete step directories, oldest first.</summary>
    public static IReadOnlyList<(long Step, string Path)> List(string checkpointsDir)
    {
        if (!Directory.Exists(checkpointsDir)) return [];
        var result = new List<(long, string)>();
        foreach (var dir in Directory.EnumerateDirectories(checkpointsDir, "step-*"))
        {
            if (PosixFs.IsLink(dir)) continue;
            string name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out long step)
                && File.Exists(Path.Combine(dir, StateFile)))
                result.Add((step, dir));
        }
        return result.OrderBy(r => r.Item1).ToList();
    }

    /// <summary>Removes leftovers of interrupted writes or deletions.</summary>
    public static void RemoveTemps(string checkpointsDir)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(checkpointsDir, TempPrefix + "*"))
        {
            if (PosixFs.IsLink(entry) || File.Exists(entry)) File.Delete(entry);
            else Directory.Delete(entry, recursive: true);
        }
    }

    private static void PointLink(string checkpointsDir, string linkName, string targetName)
    {
        string temp = Path.Combine(checkpointsDir, $"{TempPrefix}{linkName}-{Guid.NewGuid():N}");
        File.CreateSymbolicLink(temp, targetName); // relative target: the run directory can be moved
        string link = Path.Combine(checkpointsDir, linkName);
        if (Directory.Exists(link) && !PosixFs.IsLink(link))
        {
            // A run directory copied without keeping links (cp -r, some sync tools) holds a copy of a step
            // directory under this name; the rename below cannot replace a directory. A copy of a checkpoint
            // goes (the step directory it copied is kept under its own name); anything else is not ours to delete.
            if (!File.Exists(Path.Combine(link, StateFile)))
                throw new IOException($"{link}: a directory that is not a checkpoint stands where the '{linkName}' link goes; move it away.");
            Directory.Delete(link, recursive: true);
        }
        PosixFs.Rename(temp, link);
        PosixFs.FsyncDirectory(checkpointsDir);
    }

    private static void UpdateBest(string checkpointsDir)
    {
        (string dir, CheckpointMetric metric)? best = null;
        foreach (var (_, dir) in List(checkpointsDir))
        {
            var metric = TryReadMetric(dir);
            if (metric is null) continue;
            if (best is null || metric.IsBetterThan(best.Value.metric))
                best = (dir, metric);
        }
        if (best is not null)
            PointLink(checkpointsDir, BestLink, Path.GetFileName(best.Value.dir));
    }

    private static CheckpointMetric? TryReadMetric(string dir)
    {
        try
        {
            return TrainerState.FromJson(File.ReadAllText(Path.Combine(dir, StateFile)), dir).Metric;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>Keeps the complete step directory <paramref name="stepDir"/> from retention until
    /// <see cref="Unpin"/>; returns the pin's path. Throws <see cref="DirectoryNotFoundException"/> when the
    /// checkpoint is already gone. <paramref name="owner"/> names the pin (a job id: letters, digits, '-').</summary>
    public static string Pin(string checkpointsDir, string stepDir, string owner)
    {
        if (owner.Length == 0 || !owner.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            throw new ArgumentException($"pin owner '{owner}': use letters, digits and '-'.", nameof(owner));
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(stepDir));
        string pin = Path.Combine(checkpointsDir, PinsDir, $"{name}@{owner}");
        using (Lock(checkpointsDir))
        {
            if (!File.Exists(Path.Combine(checkpointsDir, name, StateFile)))
                throw new DirectoryNotFoundException($"{Path.Combine(checkpointsDir, name)}: no such checkpoint (retention removed it, or it was never complete).");
            Directory.CreateDirectory(Path.GetDirectoryName(pin)!);
            File.WriteAllBytes(pin, []);
        }
        return pin;
    }

    /// <summary>Removes a pin made by <see cref="Pin"/> (retention may delete the checkpoint at its next write).</summary>
    public static void Unpin(string pinPath)
    {
        if (File.Exists(pinPath)) File.Delete(pinPath);
    }

    /// <summary>Removes every pin (whoever made them is gone: a new coordinator starts with no evaluations).</summary>
    public static void ClearPins(string checkpointsDir)
    {
        string dir = Path.Combine(checkpointsDir, PinsDir);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>Step directory names that some pin keeps.</summary>
    public static IReadOnlySet<string> Pinned(string checkpointsDir)
    {
        string dir = Path.Combine(checkpointsDir, PinsDir);
        if (!Directory.Exists(dir)) return new HashSet<string>();
        return Directory.EnumerateFiles(dir).Select(p => Path.GetFileName(p).Split('@')[0]).ToHashSet();
    }

    private static void ApplyRetention(string checkpointsDir, RetentionPolicy retention, string keepAlso)
    {
        var trash = new List<string>();
        using (Lock(checkpointsDir))
        {
            var all = List(checkpointsDir);
            var keep = new HashSet<string>(all.TakeLast(retention.KeepLast).Select(a => Path.GetFileName(a.Path)));
            keep.UnionWith(Pinned(checkpointsDir));
            keep.Add(keepAlso);
            foreach (var link in new[] { LastLink, BestLink })
            {
                var target = new FileInfo(Path.Combine(checkpointsDir, link)).LinkTarget;
                if (target is not null)
                    keep.Add(Path.GetFileName(Path.TrimEndingDirectorySeparator(target)));
            }
            foreach (var (_, dir) in all)
                if (!keep.Contains(Path.GetFileName(dir)))
                    trash.Add(MoveToTrash(checkpointsDir, dir));
        }
        // Deleting gigabytes can take a while: outside the lock, a pin need not wait for it.
        foreach (var t in trash) Directory.Delete(t, recursive: true);
    }

    private static void Discard(string checkpointsDir, string dir) =>
        Directory.Delete(MoveToTrash(checkpointsDir, dir), recursive: true);

    private static string MoveToTrash(string checkpointsDir, string dir)
    {
        string trash = Path.Combine(checkpointsDir, $"{TempPrefix}old-{Path.GetFileName(dir)}-{Guid.NewGuid():N}");
        PosixFs.Rename(dir, trash);
        return trash;
    }

    /// <summary>An exclusive lock on <c>checkpoints/.lock</c> across processes (.NET takes flock for
    /// FileShare.None on Unix), retried while another process holds it.</summary>
    private static FileStream Lock(string checkpointsDir)
    {
        string path = Path.Combine(checkpointsDir, LockFile);
        var until = DateTime.UtcNow + LockWait;
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException e) when (e is not DirectoryNotFoundException && DateTime.UtcNow < until) { Thread.Sleep(10); }
            catch (IOException e) when (e is not DirectoryNotFoundException)
            {
                throw new IOException($"{path}: still locked after {LockWait.TotalSeconds:F0} s by another process " +
                    $"(a checkpoint write or an evaluation pinning a checkpoint); {e.Message}", e);
            }
        }
    }
}
