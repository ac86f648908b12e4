using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.TransferProtocol;

namespace LiteVae.Actors.Transfer;

/// <summary>Whether this node shares the run directory of the coordinator's node (<c>litevae.storage.shared-run-dir</c>).</summary>
public enum SharedRunDir
{
    /// <summary>Shared when the run directory's <c>run-id</c> reads the same here; a checkpoint is used in place when its
    /// bytes match (manifest), else copied over the cluster.</summary>
    Auto,
    /// <summary>Always shared (one filesystem at the same path on every host): paths are trusted, nothing is copied.</summary>
    Yes,
    /// <summary>Never shared: this node keeps its own run directory and every checkpoint it needs is copied.</summary>
    No,
}

/// <summary>
/// A node's storage: whether it shares the run's home directory, where its own copy of a run lives when it does not
/// (<see cref="NodeRunDir"/>, else <see cref="RunsRoot"/>/&lt;the run's name&gt;), and how checkpoints are copied
/// (chunk size under Akka's maximum frame size, how long one request may take, how many tries per holder).
/// </summary>
public sealed record StorageSettings(SharedRunDir Shared, string RunsRoot, string NodeRunDir, int ChunkBytes, TimeSpan RequestTimeout, int Attempts)
{
    /// <summary>Today's single-filesystem behaviour (tests and nodes built without storage settings).</summary>
    public static readonly StorageSettings SharedDisk = new(SharedRunDir.Yes, "runs", "", 1 << 20, TimeSpan.FromSeconds(30), 3);

    /// <summary>The run directory this node reads and writes for the run whose home is <paramref name="home"/>: the home's
    /// own path when it is shared, else this node's copy.</summary>
    public string LocalRunDir(RunHome? home, string homeRunDir)
    {
        if (home is null || Shared == SharedRunDir.Yes) return homeRunDir;
        if (Shared == SharedRunDir.Auto && RunDirectory.ReadId(homeRunDir) == home.Id) return homeRunDir;
        string own = NodeRunDir != "" ? NodeRunDir : Path.Combine(RunsRoot, Path.GetFileName(Path.TrimEndingDirectorySeparator(homeRunDir)));
        return Path.GetFullPath(own);
    }

    /// <summary>A checkpoint found at the sender's path on this node may be used in place when its bytes match.</summary>
    public bool MayUseInPlace => Shared != SharedRunDir.No;
}
