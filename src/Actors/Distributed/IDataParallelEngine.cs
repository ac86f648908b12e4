using LiteVae.Actors.Protocol;
using LiteVae.Model.Distributed;

namespace LiteVae.Actors.Distributed;

/// <summary>
/// A training engine that can be one rank of a data-parallel group (<see cref="Training.LiteVaeEngine"/>). Rank 0, the leader, is driven by the DeviceTrainer exactly like a lone
/// trainer: <see cref="Training.ITrainingEngine.TrainStep"/> receives the global batch from the data plane,
/// sends it to the followers over the group's control channel and trains on its own slice. Followers call
/// <see cref="FollowStep"/>, which waits for the leader's next batch and trains on their slice. All calls but
/// <see cref="AbortGroup"/> come from the DeviceTrainer's thread; every blocking call ends by the group's
/// timeouts or an abort, never hangs.
/// </summary>
public interface IDataParallelEngine
{
    /// <summary>Rank 0: creates the addresses of a new group (bootstrap roots live in this process).</summary>
    IReadOnlyList<CollectiveAddress> CreateGroupAddresses(int worldSize);

    /// <summary>Joins as <paramref name="rank"/> (blocks until every rank joined or the join timeout), then makes the
    /// replicas identical (rank 0's state broadcast).</summary>
    void JoinGroup(long generation, int rank, int worldSize, IReadOnlyList<CollectiveAddress> addresses);

    /// <summary>The rank in the current group, or -1 when training alone.</summary>
    int Rank { get; }

    /// <summary>Follower: one step with the leader's next batch.</summary>
    FollowerStep FollowStep();

    /// <summary>Leader: tells the followers the run is over (they stop stepping).</summary>
    void EndGroup();

    /// <summary>From any thread: breaks the group; blocked and later calls throw. Idempotent.</summary>
    void AbortGroup(string reason);
}
