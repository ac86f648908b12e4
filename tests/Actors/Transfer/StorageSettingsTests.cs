using LiteVae.Actors.Transfer;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.TransferProtocol;

namespace LiteVae.Actors.Tests.Transfer;

/// <summary>Which run directory a node uses for a run whose home is elsewhere: the home's own path when it shares that
/// disk (auto: the run-id there is the home's), else its own copy.</summary>
public sealed class StorageSettingsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"litevae-storage-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static StorageSettings With(SharedRunDir mode, string runsRoot, string runDir = "") =>
        StorageSettings.SharedDisk with { Shared = mode, RunsRoot = runsRoot, NodeRunDir = runDir };

    [Fact]
    public void A_node_uses_the_homes_directory_only_when_it_shares_it()
    {
        string home = Path.Combine(_root, "a", "20261208-0100_demo_fp32");
        Directory.CreateDirectory(home);
        string id = RunDirectory.EnsureId(home);
        Assert.Equal(id, RunDirectory.EnsureId(home));   // written once
        var server = Akka.Actor.ActorRefs.Nobody;
        string runs = Path.Combine(_root, "b", "runs");

        Assert.Equal(home, With(SharedRunDir.Auto, runs).LocalRunDir(new RunHome(home, id, server), home));
        Assert.Equal(Path.Combine(runs, "20261208-0100_demo_fp32"), With(SharedRunDir.Auto, runs).LocalRunDir(new RunHome(home, "another", server), home));
        Assert.Equal(Path.Combine(runs, "20261208-0100_demo_fp32"), With(SharedRunDir.No, runs).LocalRunDir(new RunHome(home, id, server), home));
        Assert.Equal(Path.Combine(_root, "b", "mine"), With(SharedRunDir.No, runs, Path.Combine(_root, "b", "mine")).LocalRunDir(new RunHome(home, id, server), home));
        Assert.Equal(home, With(SharedRunDir.Yes, runs).LocalRunDir(new RunHome(home, "another", server), home));
        Assert.Equal(home, With(SharedRunDir.No, runs).LocalRunDir(null, home));   // no home given: the single-filesystem messages of before
        Assert.False(With(SharedRunDir.No, runs).MayUseInPlace);
    }
}
