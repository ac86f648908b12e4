namespace LiteVae.Actors.Protocol;

/// <summary>The bytes that let ranks join one collective group (a TCP rendezvous address or NCCL's 128-byte unique id).</summary>
/// <param name="Role">"control" (host bytes: the batch each step, over TCP) or "data" (gradients: NCCL on GPUs, TCP on CPUs).</param>
public sealed record CollectiveAddress(string Role, string Backend, byte[] Bytes)
{
    public bool Equals(CollectiveAddress? o) =>
        o is not null && Role == o.Role && Backend == o.Backend && Bytes.AsSpan().SequenceEqual(o.Bytes);

    public override int GetHashCode() => HashCode.Combine(Role, Backend, Bytes.Length);
}

/// <summary>
/// Data-parallel rendezvous between the Coordinator and the DeviceTrainers (one per GPU process). A group
/// generation: the Coordinator forms it from registered trainers, starts each (all restore the same last
/// checkpoint), asks rank 0 to create the group's addresses (NCCL's bootstrap root lives in rank 0's
/// process), hands them to every rank, and once all joined lets rank 0 (the leader) train; the followers
/// step with it. A lost member ends the generation: survivors abort and restart, and the next generation forms.
/// </summary>
public static class GroupProtocol
{
    /// <summary>Coordinator → rank 0 once every member is ready: create the addresses of this generation.</summary>
    public sealed record CreateGroupAddresses(string CoordinatorId, long Generation, int WorldSize) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Rank 0 → Coordinator.</summary>
    public sealed record GroupAddressesCreated(string CoordinatorId, long Generation, IReadOnlyList<CollectiveAddress> Addresses)
        : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(GroupAddressesCreated? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Generation == o.Generation && Addresses.SequenceEqual(o.Addresses);

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Generation);
    }

    /// <summary>Coordinator → every member: join as <paramref name="Rank"/> of <paramref name="WorldSize"/>.</summary>
    public sealed record JoinTrainerGroup(string CoordinatorId, long Generation, int Rank, int WorldSize, IReadOnlyList<CollectiveAddress> Addresses)
        : ILiteVaeMessage, IWithCoordinatorId
    {
        public bool Equals(JoinTrainerGroup? o) =>
            o is not null && CoordinatorId == o.CoordinatorId && Generation == o.Generation && Rank == o.Rank &&
            WorldSize == o.WorldSize && Addresses.SequenceEqual(o.Addresses);

        public override int GetHashCode() => HashCode.Combine(CoordinatorId, Generation, Rank);
    }

    /// <summary>Member → Coordinator: joined (rank 0's state was broadcast; the weights are identical).</summary>
    public sealed record TrainerGroupJoined(string CoordinatorId, long Generation, int Rank) : ILiteVaeMessage, IWithCoordinatorId;

    /// <summary>Coordinator → a member's abort handle (a child actor that is never blocked in a collective): a
    /// member was lost; abort the communicator now, the trainer then restarts from the last checkpoint.</summary>
    public sealed record AbortTrainerGroup(string CoordinatorId, long Generation, string Reason) : ILiteVaeMessage, IWithCoordinatorId;
}
