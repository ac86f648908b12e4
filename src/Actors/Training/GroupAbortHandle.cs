using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Distributed;
using static LiteVae.Actors.Protocol.GroupProtocol;

namespace LiteVae.Actors.Training;

/// <summary>What a DeviceTrainer shares with its <see cref="GroupAbortHandle"/>: the engine and the generation this
/// incarnation joins (-1: none).</summary>
internal sealed class EngineHolder
{
    public volatile IDataParallelEngine? Engine;
    private long _generation = -1;
    public long Generation { get => Volatile.Read(ref _generation); set => Volatile.Write(ref _generation, value); }
}

/// <summary>From the abort handle to its DeviceTrainer: the group was aborted; this incarnation's state is garbage.</summary>
internal sealed record GroupAborted(string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// The DeviceTrainer's child that the Coordinator sends <see cref="AbortTrainerGroup"/> to: it runs on the default
/// dispatcher, so it is never stuck behind a collective call on the trainer's thread. It keeps its path across
/// trainer incarnations, so it acts only for the generation this incarnation joined.
/// </summary>
internal sealed class GroupAbortHandle : ReceiveActor
{
    public const string Name = "group-abort";

    public GroupAbortHandle(EngineHolder holder)
    {
        Receive<AbortTrainerGroup>(m =>
        {
            if (m.Generation != holder.Generation) return;
            Context.GetLogger().Warning("aborting the data-parallel group (generation {0}): {1}", m.Generation, m.Reason);
            holder.Engine?.AbortGroup(m.Reason);
            Context.Parent.Tell(new GroupAborted(m.Reason));
        });
    }
}
