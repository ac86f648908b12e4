using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Ledger;

/// <summary>A shard handed to a data node: read it, skipping <see cref="Skip"/>.</summary>
public sealed record LeaseGrant(long LeaseId, int Epoch, int Shard, string ShardPath, IndexRanges Skip);

/// <summary>
/// The Coordinator's book of the training set: which shard of which epoch is leased to which data node,
/// which samples the trainer has consumed, which were bad, and what was lost or seen twice.
///
/// Rules (see architecture.md, "Data path"):
/// - Each epoch visits every shard once, in an order shuffled by (seed, epoch). Shards of epoch e+1 are
///   leased only once every shard of epoch e has been leased, and at most <see cref="MaxOpenEpochs"/> are open.
///   Three, not two: the last samples of epoch e can sit in a data node's half-filled batch while every
///   sample of e+1 is trained; only samples of e+2 fill that batch (with two, the run would stall there).
///   A small training set (a few hundred images, or the bundled samples) gets more: epochs keep opening while
///   the open ones hold fewer than <see cref="MinOpenSamples"/> untrained samples (up to
///   <see cref="MaxOpenEpochsSmallData"/>). Otherwise every batch waits for epoch turnover through the
///   coordinator: 4 GPUs on the 34 bundled training images waited 70 % of the time for data.
/// - A lease ends when its node has read the whole shard AND the trainer has consumed every sample of it
///   that was not bad. Until then it is re-leased (skipping what was consumed or bad) when its node is
///   lost, its stream breaks, the plan changes, or it is stale. So nothing read and then lost in flight is
///   lost for the epoch: it is read again. The trainer drops a batch that repeats a sample it trained (see
///   ConsumedLog), so <see cref="Duplicated"/> (a sample reported consumed twice) stays 0; it is kept as a check.
/// - A shard whose reader fails <see cref="MaxFailures"/> times is abandoned; its samples not yet consumed
///   are counted as lost.
/// </summary>
public sealed class ShardLedger
{
    public const int MaxFailures = 3;
    public const int MaxOpenEpochs = 3;
    /// <summary>Samples the open epochs should hold before no further epoch opens: well above a global batch
    /// times the pipeline's depth (data node and trainer intake each queue 4 batches).</summary>
    public const int MinOpenSamples = 2048;
    public const int MaxOpenEpochsSmallData = 64;

    private sealed class ShardState
    {
        public int? Total;
        public readonly SampleBits Consumed = new();
        public readonly SampleBits Bad = new();
        public long? LeaseId;
        public bool Queued;       // waiting in the re-lease queue
        public bool EverLeased;
        public bool Done;
        public bool Abandoned;
        public SampleBits Returned = new();   // delivered in a batch the trainer dropped, not trained
        public bool ReadAgain;      // some were returned while a lease was reading: re-lease once read through
        public bool OnlyReturned;   // the next lease reads just the returned samples
        public int Failures;
        public DateTime LastActivity;
    }

    private sealed class EpochState(int[] order)
    {
        public readonly int[] Order = order;
        public int NextFresh;       // position in Order of the next never-leased shard
        public readonly Dictionary<int, ShardState> Shards = new();
    }

    private sealed record LeaseInfo(int Epoch, int Shard, string Worker, bool ReadDone);

    private readonly IReadOnlyList<string> _shardPaths;
    private readonly long _seed;
    private readonly SortedDictionary<int, EpochState> _epochs = new();
    private readonly Dictionary<long, LeaseInfo> _leases = new();
    private readonly Queue<(int Epoch, int Shard)> _requeue = new();
    private readonly Func<DateTime> _clock;
    private long _nextLeaseId = 1;
    private int _firstOpenEpoch;
    private readonly HashSet<int> _closedWithoutSamples = [];
    private readonly Dictionary<int, int> _shardTotals = new();   // samples per shard, learned from reads

    public long SamplesConsumed { get; private set; }
    public long Duplicated { get; private set; }
    public long Lost { get; private set; }
    public long BadSamples { get; private set; }
    /// <summary>Leases taken back (node lost, stream broken, reader failed, stale, plan voided) to be issued again.</summary>
    public long ReLeased { get; private set; }
    public long Abandoned { get; private set; }

    public ShardLedger(IReadOnlyList<string> shardPaths, long seed, Func<DateTime>? clock = null)
    {
        if (shardPaths.Count == 0)
            throw new ArgumentException("the training set has no shards", nameof(shardPaths));
        _shardPaths = shardPaths;
        _seed = seed;
        _clock = clock ?? (() => DateTime.UtcNow);
        Open(0);
    }

    /// <summary>True when <paramref name="epoch"/> closed with no sample consumed (all bad or abandoned).</summary>
    public bool ClosedWithoutSamples(int epoch) => _closedWithoutSamples.Contains(epoch);

    /// <summary>The lowest epoch not yet complete.</summary>
    public int CurrentEpoch => _firstOpenEpoch;

    public int ActiveLeases => _leases.Count;

    /// <summary>Shard visiting order of an epoch: a Fisher–Yates shuffle seeded by (seed, epoch).</summary>
    public static int[] EpochOrder(int shardCount, long seed, int epoch)
    {
        var order = Enumerable.Range(0, shardCount).ToArray();
        var rng = new Random(unchecked((int)(seed * 1_000_003L + epoch * 7919L)));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    private EpochState Open(int epoch)
    {
        if (!_epochs.TryGetValue(epoch, out var e))
            _epochs[epoch] = e = new EpochState(EpochOrder(_shardPaths.Count, _seed, epoch));
        return e;
    }

    private ShardState State(EpochState e, int shard)
    {
        if (!e.Shards.TryGetValue(shard, out var s))
            e.Shards[shard] = s = new ShardState();
        return s;
    }

    /// <summary>Whether the open epochs hold fewer than <paramref name="limit"/> samples not yet trained or bad;
    /// false while any shard's size is unknown (not read yet), so large data sets never open extra epochs.</summary>
    private bool OpenSamplesBelow(int limit)
    {
        long open = 0;
        foreach (var e in _epochs.Values)
            for (int shard = 0; shard < _shardPaths.Count; shard++)
            {
                if (!_shardTotals.TryGetValue(shard, out int total)) return false;
                open += e.Shards.TryGetValue(shard, out var st) ? Math.Max(0, total - st.Consumed.Count - st.Bad.Count) : total;
                if (open >= limit) return false;
            }
        return true;
    }

    /// <summary>The next shard to read for <paramref name="worker"/>, or null if none may be leased now.</summary>
    public LeaseGrant? NextLease(string worker)
    {
        while (_requeue.Count > 0)
        {
            var (ep, sh) = _requeue.Dequeue();
            if (!_epochs.TryGetValue(ep, out var e)) continue;
            var s = State(e, sh);
            s.Queued = false;
            if (s.Done || s.Abandoned || s.LeaseId is not null) continue;
            return Grant(ep, sh, s, worker);
        }
        foreach (var (ep, e) in _epochs)
        {
            if (e.NextFresh < e.Order.Length)
            {
                int sh = e.Order[e.NextFresh++];
                return Grant(ep, sh, State(e, sh), worker);
            }
        }
        // Every open epoch is fully leased: open the next.
        int last = _epochs.Count == 0 ? _firstOpenEpoch - 1 : _epochs.Keys.Max();
        if (_epochs.Count >= MaxOpenEpochs && !(_epochs.Count < MaxOpenEpochsSmallData && OpenSamplesBelow(MinOpenSamples))) return null;
        var next = Open(last + 1);
        int first = next.Order[next.NextFresh++];
        return Grant(last + 1, first, State(next, first), worker);
    }

    private LeaseGrant Grant(int epoch, int shard, ShardState s, string worker)
    {
        long id = _nextLeaseId++;
        s.EverLeased = true;
        s.LeaseId = id;
        s.LastActivity = _clock();
        _leases[id] = new LeaseInfo(epoch, shard, worker, false);
        // Normally everything not consumed or bad. A re-read of returned samples skips the rest too: those
        // may still be in flight from the lease that just ended, and reading them again would repeat them.
        var skip = s.OnlyReturned && s.Total is int total
            ? IndexRanges.From(Enumerable.Range(0, total).Where(i => !s.Returned.Contains(i) || s.Consumed.Contains(i) || s.Bad.Contains(i)))
            : IndexRanges.From(s.Consumed.Indices().Concat(s.Bad.Indices()));
        (s.Returned, s.ReadAgain, s.OnlyReturned) = (new SampleBits(), false, false);
        return new LeaseGrant(id, epoch, shard, _shardPaths[shard], skip);
    }

    /// <summary>The node finished reading the shard of <paramref name="leaseId"/>.</summary>
    /// <returns>Epochs that closed as a result (tell the trainer).</returns>
    public IReadOnlyList<int> LeaseRead(long leaseId, int samplesInShard, IndexRanges bad)
    {
        if (!_leases.TryGetValue(leaseId, out var l)) return [];
        _leases[leaseId] = l with { ReadDone = true };
        var s = State(_epochs[l.Epoch], l.Shard);
        s.Total = Math.Max(s.Total ?? 0, samplesInShard);
        _shardTotals[l.Shard] = Math.Max(_shardTotals.GetValueOrDefault(l.Shard), samplesInShard);
        s.LastActivity = _clock();
        foreach (int i in bad.Indices())
            if (s.Bad.Add(i)) BadSamples++;
        var closed = CheckShard(l.Epoch, l.Shard, s);
        ReleaseIfReadAgain(l.Epoch, l.Shard, s);
        return closed;
    }

    /// <summary>
    /// The trainer dropped a batch holding these samples (it repeated one it had trained). Those not consumed
    /// were delivered once and will not come again from their lease, so they are read again, and only they:
    /// at once where the shard's lease has been read through, else when its reader reports the end. A shard
    /// waiting for its next lease gets them read by that lease.
    /// </summary>
    public void Dropped(IEnumerable<SampleId> samples)
    {
        foreach (var group in samples.GroupBy(s => (s.Epoch, s.Shard)))
        {
            var (epoch, shard) = group.Key;
            if (!_epochs.TryGetValue(epoch, out var e)) continue;
            var s = State(e, shard);
            if (s.Done || s.Abandoned) continue;
            foreach (var id in group)
                if (!s.Consumed.Contains(id.Index)) s.Returned.Add(id.Index);
            if (s.LeaseId is null) continue;   // queued or not leased yet: that lease will read them
            s.ReadAgain = true;
            ReleaseIfReadAgain(epoch, shard, s);
        }
    }

    private void ReleaseIfReadAgain(int epoch, int shard, ShardState s)
    {
        if (!s.ReadAgain || s.Done || s.LeaseId is not long id || !_leases[id].ReadDone) return;
        s.ReadAgain = false;
        _leases.Remove(id);
        s.LeaseId = null;
        bool queued = s.Queued;
        Requeue(epoch, shard, s);
        if (!queued) s.OnlyReturned = true;
    }

    /// <summary>The node's reader gave up on the lease. Re-leased, or abandoned after <see cref="MaxFailures"/>.</summary>
    public IReadOnlyList<int> LeaseFailed(long leaseId)
    {
        if (!_leases.Remove(leaseId, out var l)) return [];
        var s = State(_epochs[l.Epoch], l.Shard);
        s.LeaseId = null;
        if (++s.Failures >= MaxFailures)
        {
            s.Abandoned = true;
            Abandoned++;
            if (s.Total is int total) Lost += s.Consumed.MissingWith(s.Bad, total);
            return CheckEpochs();
        }
        Requeue(l.Epoch, l.Shard, s);
        return [];
    }

    /// <summary>Samples the trainer consumed in one step.</summary>
    public IReadOnlyList<int> Consumed(IEnumerable<SampleId> samples)
    {
        var touched = new HashSet<(int, int)>();
        foreach (var id in samples)
        {
            SamplesConsumed++;
            if (!_epochs.TryGetValue(id.Epoch, out var e))
            {
                if (id.Epoch < _firstOpenEpoch) Duplicated++;   // a sample of an epoch already complete
                continue;
            }
            var s = State(e, id.Shard);
            if (!s.Consumed.Add(id.Index)) Duplicated++;
            s.LastActivity = _clock();
            touched.Add((id.Epoch, id.Shard));
        }
        var closed = new List<int>();
        foreach (var (ep, sh) in touched)
            if (_epochs.TryGetValue(ep, out var e))
                closed.AddRange(CheckShard(ep, sh, State(e, sh)));
        return closed;
    }

    /// <summary>A data node left (or its stream broke): re-lease every shard it held that is not complete.</summary>
    public int WorkerLost(string worker)
    {
        var mine = _leases.Where(kv => kv.Value.Worker == worker).ToList();
        foreach (var (id, l) in mine)
        {
            _leases.Remove(id);
            var s = State(_epochs[l.Epoch], l.Shard);
            s.LeaseId = null;
            Requeue(l.Epoch, l.Shard, s);
        }
        return mine.Count;
    }

    /// <summary>
    /// Leases whose shard was read but whose samples stopped arriving for <paramref name="after"/>: their
    /// batches were lost in flight without a node loss. Re-lease them.
    /// </summary>
    public int ReleaseStale(TimeSpan after)
    {
        var now = _clock();
        var stale = _leases.Where(kv => kv.Value.ReadDone &&
                                        now - State(_epochs[kv.Value.Epoch], kv.Value.Shard).LastActivity > after).ToList();
        foreach (var (id, l) in stale)
        {
            _leases.Remove(id);
            var s = State(_epochs[l.Epoch], l.Shard);
            s.LeaseId = null;
            Requeue(l.Epoch, l.Shard, s);
        }
        return stale.Count;
    }

    /// <summary>
    /// Starts over from what a checkpoint's weights have seen: every open epoch is re-leased from the
    /// start of its order, skipping the consumed samples. All current leases are void.
    /// </summary>
    public void Restore(ConsumedState state)
    {
        _epochs.Clear();
        _leases.Clear();
        _requeue.Clear();
        _firstOpenEpoch = state.FirstOpenEpoch;
        Open(_firstOpenEpoch);
        foreach (var c in state.Shards.Where(c => c.Epoch >= _firstOpenEpoch))
        {
            var s = State(Open(c.Epoch), c.Shard);
            s.Consumed.AddRange(c.Consumed.Indices());
        }
        // Epochs beyond the first that the checkpoint had started: re-lease all their shards in order too.
        foreach (var e in _epochs.Values) e.NextFresh = 0;
    }

    /// <summary>Voids every lease (a new plan): their shards are re-leased, skipping what was consumed.</summary>
    public void VoidAllLeases()
    {
        foreach (var (id, l) in _leases.ToList())
        {
            _leases.Remove(id);
            var s = State(_epochs[l.Epoch], l.Shard);
            s.LeaseId = null;
            Requeue(l.Epoch, l.Shard, s);
        }
    }

    public bool IsLeaseActive(long leaseId) => _leases.ContainsKey(leaseId);

    private void Requeue(int epoch, int shard, ShardState s)
    {
        s.OnlyReturned = false;   // a lease lost or voided: read everything not consumed
        if (s.Queued || s.Done || s.Abandoned) return;
        ReLeased++;
        s.Queued = true;
        _requeue.Enqueue((epoch, shard));
    }

    private IReadOnlyList<int> CheckShard(int epoch, int shard, ShardState s)
    {
        // Complete once the shard's size is known (it was read to the end once) and every sample is
        // consumed or bad, whoever holds it now.
        if (s.Done || s.Total is not int total) return [];
        if (!s.Consumed.CoversWith(s.Bad, total)) return [];
        s.Done = true;
        if (s.LeaseId is long id) _leases.Remove(id);
        s.LeaseId = null;
        return CheckEpochs();
    }

    private IReadOnlyList<int> CheckEpochs()
    {
        var closed = new List<int>();
        while (_epochs.TryGetValue(_firstOpenEpoch, out var e) && e.NextFresh >= e.Order.Length &&
               e.Order.All(sh => e.Shards.TryGetValue(sh, out var s) && (s.Done || s.Abandoned)))
        {
            _epochs.Remove(_firstOpenEpoch);
            closed.Add(_firstOpenEpoch);
            if (e.Shards.Values.All(s => s.Consumed.Count == 0)) _closedWithoutSamples.Add(_firstOpenEpoch);
            _firstOpenEpoch++;
            if (_epochs.Count == 0) Open(_firstOpenEpoch);
        }
        return closed;
    }

    /// <param name="redelivered">The trainer's count of repeated samples it dropped.</param>
    public DataAccounting Accounting(long discardedBatches, long redelivered) =>
        new(_firstOpenEpoch, SamplesConsumed, Duplicated, Lost, BadSamples, ReLeased, discardedBatches, Abandoned, redelivered);
}
