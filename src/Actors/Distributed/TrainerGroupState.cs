namespace LiteVae.Actors.Distributed;

/// <summary>How many trainers (one per GPU) a data-parallel run uses.</summary>
/// <param name="Trainers">Ranks wanted: the group forms at once when this many trainers have registered.</param>
/// <param name="MinTrainers">The fewest ranks to train with: after a loss, or when fewer than
/// <paramref name="Trainers"/> come, a group of at least this many forms once no trainer registered for
/// <paramref name="Settle"/>.</param>
/// <param name="Settle">Quiet time before forming a smaller group (lets late or restarting trainers join).</param>
public sealed record GroupSettings(int Trainers, int MinTrainers, TimeSpan Settle)
{
    public static readonly GroupSettings Single = new(1, 1, TimeSpan.Zero);

    public IEnumerable<string> Problems()
    {
        if (Trainers < 1) yield return $"trainers is {Trainers}; must be at least 1";
        if (MinTrainers < 1 || MinTrainers > Trainers) yield return $"min-trainers is {MinTrainers}; must be 1..trainers ({Trainers})";
        if (Settle < TimeSpan.Zero) yield return "settle time must not be negative";
    }
}

/// <summary>A trainer that offered itself: its actor path (unique per incarnation), node and device.</summary>
public sealed record GroupMember(string Id, string Node, string Device);

/// <summary>One generation of the data-parallel group: rank r is <c>Ranks[r]</c>.</summary>
public sealed record FormedGroup(long Generation, IReadOnlyList<GroupMember> Ranks)
{
    public int WorldSize => Ranks.Count;

    public int RankOf(string id)
    {
        for (int r = 0; r < Ranks.Count; r++)
            if (Ranks[r].Id == id) return r;
        return -1;
    }

    public bool Equals(FormedGroup? o) => o is not null && Generation == o.Generation && Ranks.SequenceEqual(o.Ranks);

    public override int GetHashCode() => HashCode.Combine(Generation, Ranks.Count);
}

/// <summary>
/// The Coordinator's bookkeeping for the data-parallel group (no Akka, no I/O: a pure state machine).
///
/// Trainers register; the group forms when enough have (ranks ordered by node, device, id, so rank 0 is
/// stable); a generation number names each formation. Losing a member of the formed group dissolves it:
/// the survivors must abort their communicator (they get told) and register again, and the next
/// formation (generation + 1) is made of whoever registers, resuming from the last checkpoint.
/// </summary>
public sealed class TrainerGroupState(GroupSettings settings)
{
    private readonly Dictionary<string, GroupMember> _waiting = new();
    private DateTime _lastChange = DateTime.MinValue;

    public GroupSettings Settings => settings;

    public long Generation { get; private set; }

    /// <summary>The formed group, or null while waiting for trainers.</summary>
    public FormedGroup? Active { get; private set; }

    public IReadOnlyCollection<GroupMember> Waiting => _waiting.Values;

    /// <summary>A trainer offers itself. Returns false when it is already known.</summary>
    public bool Register(GroupMember member, DateTime now)
    {
        if (Active?.RankOf(member.Id) >= 0 || _waiting.ContainsKey(member.Id))
            return false;
        _waiting[member.Id] = member;
        _lastChange = now;
        return true;
    }

    /// <summary>Forms the next generation when the rules allow (see <see cref="GroupSettings"/>).</summary>
    public FormedGroup? TryForm(DateTime now)
    {
        if (Active is not null || _waiting.Count < settings.MinTrainers)
            return null;
        bool full = _waiting.Count >= settings.Trainers;
        if (!full && now - _lastChange < settings.Settle)
            return null;
        var ranks = _waiting.Values
            .OrderBy(m => m.Node, StringComparer.Ordinal)
            .ThenBy(m => m.Device, StringComparer.Ordinal)
            .ThenBy(m => m.Id, StringComparer.Ordinal)
            .Take(settings.Trainers)
            .ToList();
        foreach (var m in ranks) _waiting.Remove(m.Id);
        Active = new FormedGroup(++Generation, ranks);
        return Active;
    }

    /// <summary>
    /// A trainer is gone (its actor stopped or its node left). Returns the members that must abort their
    /// communicator: the rest of the formed group when the lost one was in it, else nobody.
    /// </summary>
    public IReadOnlyList<GroupMember> Lose(string id, DateTime now)
    {
        if (_waiting.Remove(id))
        {
            _lastChange = now;
            return [];
        }
        if (Active is { } g && g.RankOf(id) >= 0)
            return Dissolve(now, except: id);
        return [];
    }

    /// <summary>Ends the current generation (a member failed): returns the members to tell.</summary>
    public IReadOnlyList<GroupMember> Dissolve(DateTime now, string? except = null)
    {
        if (Active is not { } g) return [];
        Active = null;
        _lastChange = now;
        // Survivors come back as fresh registrations (restarted actors have new ids).
        return g.Ranks.Where(m => m.Id != except).ToList();
    }
}
