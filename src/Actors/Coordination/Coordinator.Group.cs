using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Training;
using static LiteVae.Actors.Protocol.GroupProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The Coordinator's data-parallel group (settings.Group.Trainers &gt; 1): it forms a generation from registered
/// trainers, starts every rank from the last checkpoint, has rank 0 create the group's addresses and hands them
/// out; rank 0 (the leader) is the trainer the data plane feeds. A lost member aborts the generation.
/// </summary>
public sealed partial class Coordinator
{
    private readonly TrainerGroupState _group;
    private readonly Dictionary<string, TrainerInfo> _members = new();
    private readonly HashSet<string> _groupReady = [], _groupJoined = [];
    private TrainerReady? _leaderReady;
    private bool GroupMode => _settings.Group.Trainers > 1;

    private void RegisterGroupMember(RegisterTrainer r)
    {
        string id = Key(r.Trainer);
        if (!_members.ContainsKey(id))
        {
            _members[id] = new TrainerInfo(r.Trainer, r.Intake, r.Node, r.Device, r.IntakeBatches);
            Context.Watch(r.Trainer);
        }
        if (_group.Register(new GroupMember(id, r.Node, r.Device), DateTime.UtcNow))
            _log.Info("trainer {0} on {1} ({2}) waits for the group ({3} waiting, {4} wanted)", r.Trainer.Path, r.Node, r.Device,
                _group.Waiting.Count, _settings.Group.Trainers);
        TryFormGroup();
    }

    /// <summary>Forms the next generation when enough trainers wait; every rank restores the last checkpoint.</summary>
    private void TryFormGroup()
    {
        if (!GroupMode || _state == RunFinishedState || _group.TryForm(DateTime.UtcNow) is not { } g) return;
        _groupReady.Clear();
        _groupJoined.Clear();
        _leaderReady = null;
        _trainer = _members[g.Ranks[0].Id];
        _state = RunStarting;
        string? resume = LastCheckpoint;
        _log.Info("data-parallel group generation {0}: {1} ({2})", g.Generation,
            string.Join(", ", g.Ranks.Select((m, i) => $"rank {i} {m.Node} {m.Device}")), resume is null ? "fresh run" : $"resume from {resume}");
        foreach (var m in g.Ranks)
            _members[m.Id].Trainer.Tell(StartMessage(resume, null));
    }

    private void GroupMemberReady(TrainerReady r)
    {
        if (r.CoordinatorId != _id || _group.Active is not { } g) return;
        string id = Key(Sender);
        int rank = g.RankOf(id);
        if (rank < 0) return;
        if (rank == 0) _leaderReady = r;
        if (_groupReady.Add(id) && _groupReady.Count == g.WorldSize)
            _members[g.Ranks[0].Id].Trainer.Tell(new CreateGroupAddresses(_id, g.Generation, g.WorldSize));
    }

    private void HandleGroupAddresses(GroupAddressesCreated m)
    {
        if (m.CoordinatorId != _id || _group.Active is not { } g || g.Generation != m.Generation) return;
        for (int rank = 0; rank < g.WorldSize; rank++)
            _members[g.Ranks[rank].Id].Trainer.Tell(new JoinTrainerGroup(_id, g.Generation, rank, g.WorldSize, m.Addresses));
    }

    private void HandleGroupJoined(TrainerGroupJoined m)
    {
        if (m.CoordinatorId != _id || _group.Active is not { } g || g.Generation != m.Generation) return;
        if (_groupJoined.Add(Key(Sender)) && _groupJoined.Count == g.WorldSize && _leaderReady is { } ready)
        {
            _log.Info("data-parallel group generation {0} joined: {1} ranks from step {2}", g.Generation, g.WorldSize, ready.Step);
            StartStepping(ready);
        }
    }

    /// <summary>A member is gone: the survivors abort (through their abort handles) and restart from the last checkpoint.</summary>
    private bool LoseGroupMember(IActorRef member)
    {
        string id = Key(member);
        if (!_members.Remove(id, out var info)) return false;
        long generation = _group.Active?.Generation ?? 0;
        var survivors = _group.Lose(id, DateTime.UtcNow);
        if (survivors.Count > 0 || (_trainer is not null && _trainer.Trainer.Equals(member)))
        {
            _log.Warning("trainer {0} on {1} left data-parallel group generation {2}; {3} survivor(s) abort and resume from the last checkpoint",
                member.Path, info.Node, generation, survivors.Count);
            AbortMembers(survivors, generation, $"trainer on {info.Node} was lost");
            TrainerGone();
        }
        return true;
    }

    private void AbortMembers(IEnumerable<GroupMember> members, long generation, string reason)
    {
        var abort = new AbortTrainerGroup(_id, generation, reason);
        foreach (var m in members)
            if (_members.TryGetValue(m.Id, out var mi))
            {
                // The handle interrupts a collective in progress; the trainer itself covers one not yet joined.
                Context.ActorSelection(mi.Trainer.Path / DeviceTrainer.AbortHandleName).Tell(abort);
                mi.Trainer.Tell(abort);
            }
    }
}
