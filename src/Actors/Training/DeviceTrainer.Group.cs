using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Distributed;
using LiteVae.Model.Distributed;
using static LiteVae.Actors.Protocol.GroupProtocol;

namespace LiteVae.Actors.Training;

/// <summary>
/// The DeviceTrainer as one rank of a data-parallel group: rank 0 (the leader) steps like a lone trainer and
/// sends each global batch to the followers; followers step whenever the leader's next batch arrives. A
/// member lost or a failed collective aborts the group: this incarnation throws, and its BackoffSupervisor
/// starts a fresh one from the last checkpoint for the next generation.
/// </summary>
public sealed partial class DeviceTrainer
{
    private sealed class FollowTick : INoSerializationVerificationNeeded { public static readonly FollowTick Instance = new(); }

    /// <summary>From the abort handle: the group was aborted; this incarnation's state is garbage.</summary>
    private sealed record GroupAborted(string Reason) : INoSerializationVerificationNeeded;

    /// <summary>Thrown to let the BackoffSupervisor replace this trainer (it restarts from the last checkpoint).</summary>
    public sealed class GroupLostException(string message, Exception? inner = null) : Exception(message, inner);

    /// <summary>The child the Coordinator sends <see cref="AbortTrainerGroup"/> to: it runs on the default
    /// dispatcher, so it is never stuck behind a collective call on the trainer's thread.</summary>
    public const string AbortHandleName = "group-abort";

    /// <summary>Shared with the abort handle: the engine and the generation this incarnation joins (-1: none).</summary>
    private sealed class EngineHolder
    {
        public volatile IDataParallelEngine? Engine;
        private long _generation = -1;
        public long Generation { get => Volatile.Read(ref _generation); set => Volatile.Write(ref _generation, value); }
    }

    private sealed class GroupAbortHandle : ReceiveActor
    {
        public GroupAbortHandle(EngineHolder holder)
        {
            Receive<AbortTrainerGroup>(m =>
            {
                // The handle keeps its path across trainer incarnations: act only for the generation this
                // incarnation joined (an earlier one's abort must not kill its successor).
                if (m.Generation != holder.Generation) return;
                Context.GetLogger().Warning("aborting the data-parallel group (generation {0}): {1}", m.Generation, m.Reason);
                holder.Engine?.AbortGroup(m.Reason);
                Context.Parent.Tell(new GroupAborted(m.Reason));
            });
        }
    }

    private readonly EngineHolder _holder = new();
    private JoinTrainerGroup? _group;   // the generation this trainer joined (null: training alone)
    private bool IsFollower => _group is { Rank: > 0 };

    private IDataParallelEngine GroupEngine =>
        _engine as IDataParallelEngine ?? throw new InvalidOperationException("this node's training engine cannot be a data-parallel rank.");

    private void ReceiveGroupMessages()
    {
        Receive<CreateGroupAddresses>(HandleCreateAddresses);
        Receive<JoinTrainerGroup>(HandleJoin);
        Receive<FollowTick>(_ => Follow());
        // Sent to the trainer's own (incarnation-specific) ref as well, for a member that is not inside a collective.
        Receive<AbortTrainerGroup>(m => { if (IsCurrent(m.CoordinatorId)) throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"); });
        Receive<GroupAborted>(m => throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"));
    }

    private void HandleCreateAddresses(CreateGroupAddresses m)
    {
        if (!IsCurrent(m.CoordinatorId) || _engine is null) return;
        var addresses = GroupEngine.CreateGroupAddresses(m.WorldSize);
        _coordinator.Tell(new GroupAddressesCreated(m.CoordinatorId, m.Generation, addresses));
    }

    private void HandleJoin(JoinTrainerGroup m)
    {
        if (!IsCurrent(m.CoordinatorId) || _engine is null) return;
        _log.Info("joining the data-parallel group (generation {0}) as rank {1} of {2}", m.Generation, m.Rank, m.WorldSize);
        _holder.Generation = m.Generation;
        try
        {
            GroupEngine.JoinGroup(m.Generation, m.Rank, m.WorldSize, m.Addresses);
        }
        catch (Exception e)
        {
            throw new GroupLostException($"joining generation {m.Generation} as rank {m.Rank} failed: {e.Message}", e);
        }
        _group = m;
        _coordinator.Tell(new TrainerGroupJoined(m.CoordinatorId, m.Generation, m.Rank));
    }

    /// <summary>Follower: one step with the leader's batch per message, so other messages interleave.</summary>
    private void Follow()
    {
        _stepScheduled = false;
        if (!_running || _finished || _engine is null) return;
        FollowerStep r;
        try
        {
            r = GroupEngine.FollowStep();
        }
        catch (Exception e)
        {
            throw new GroupLostException($"rank {_group?.Rank} lost the group at step {_engine.Step}: {e.Message}", e);
        }
        if (r.Ended)
        {
            _log.Info("rank {0}: the leader ended the run at step {1}", _group?.Rank, r.Step);
            _finished = true;
            _running = false;
            return;
        }
        _stepScheduled = true;
        Self.Tell(FollowTick.Instance);
    }
}
