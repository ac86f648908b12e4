namespace LiteVae.Actors;

/// <summary>The cluster roles a LiteVae node can carry; HOCON names them in <c>litevae.node.roles</c>.</summary>
public static class ClusterRoles
{
    /// <summary>Hosts the Coordinator singleton: run state, shard leases, step budget, checkpoint registry.</summary>
    public const string Coordinator = "coordinator";
    /// <summary>Reads, decodes and batches shards leased by the Coordinator.</summary>
    public const string Data = "data";
    /// <summary>One DeviceTrainer (and its Checkpointer) per node.</summary>
    public const string Trainer = "trainer";
    /// <summary>Runs evaluation jobs on checkpoints while training goes on.</summary>
    public const string Eval = "eval";

    public static readonly IReadOnlyList<string> All = [Coordinator, Data, Trainer, Eval];

    /// <summary>The ActorSystem name every node and client uses; remote addresses must agree on it.</summary>
    public const string SystemName = "litevae";
}
