namespace LiteVae.Actors.Coordination;

/// <summary>One batch a data node was asked to make: samples [Start, Start + Size) of the run's order.</summary>
public sealed record BatchLease(long Id, long Start, int Size, string Worker, DateTime Issued)
{
    public long End => Start + Size;
}

/// <summary>
/// Which data node makes which batch. The run's samples are one numbered sequence and the trainer trains its
/// batches strictly in order (it takes only the batch that starts where it stands, so nothing is trained twice
/// and a gap stalls it rather than skipping samples). This ledger hands the batches from the trainer's position
/// on to data nodes, at most <c>ahead</c> batches beyond what the trainer has, and hands a batch out again when
/// its node is lost or it is overdue; a batch the trainer gets twice is simply not trained twice. Pure: no Akka,
/// no I/O, one thread (the Coordinator's).
/// </summary>
public sealed class BatchLedger(int batchSize)
{
    private readonly SortedDictionary<long, BatchLease> _leased = new();   // by start: not yet trained past
    private readonly SortedSet<long> _again = [];                          // starts to hand out again, first
    private long _fresh;                                                   // first start never handed out in this plan
    private long _nextId = 1;
    private int _ahead = 1;
    private DateTime _movedAt;

    public int BatchSize { get; } = batchSize >= 1 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
    /// <summary>Where the trainer stands: the first sample it has not trained.</summary>
    public long TrainerNext { get; private set; }
    /// <summary>Batches handed out again (node lost, overdue) since this ledger was made.</summary>
    public long Reissued { get; private set; }
    public int Outstanding => _leased.Count;

    /// <summary>A new plan: the trainer starts at <paramref name="next"/> and holds up to <paramref name="ahead"/> batches;
    /// every earlier lease is void.</summary>
    public void Start(long next, int ahead, DateTime now)
    {
        _leased.Clear();
        _again.Clear();
        (TrainerNext, _fresh, _ahead, _movedAt) = (next, next, Math.Max(1, ahead), now);
    }

    /// <summary>The next batch for <paramref name="worker"/>, or null when the trainer has enough ahead of it.</summary>
    public BatchLease? Next(string worker, DateTime now)
    {
        long limit = TrainerNext + (long)_ahead * BatchSize;
        while (_again.Count > 0)
        {
            long start = _again.Min;
            _again.Remove(start);
            if (start < TrainerNext) continue;   // trained meanwhile
            return Lease(start, worker, now);
        }
        if (_fresh >= limit) return null;
        var lease = Lease(_fresh, worker, now);
        _fresh += BatchSize;
        return lease;
    }

    private BatchLease Lease(long start, string worker, DateTime now)
    {
        var lease = new BatchLease(_nextId++, start, BatchSize, worker, now);
        _leased[start] = lease;
        return lease;
    }

    /// <summary>The trainer stands at <paramref name="next"/> now: leases it has trained past are done.</summary>
    public void Trained(long next, DateTime now)
    {
        if (next <= TrainerNext) return;
        TrainerNext = next;
        _movedAt = now;
        foreach (long start in _leased.Keys.TakeWhile(s => s < next).ToList())
            if (_leased[start].End <= next) _leased.Remove(start);
    }

    /// <summary>A data node left or its stream broke: its batches not yet trained go to other nodes.</summary>
    public int WorkerLost(string worker)
    {
        var mine = _leased.Values.Where(l => l.Worker == worker).ToList();
        foreach (var l in mine) Again(l);
        return mine.Count;
    }

    /// <summary>
    /// When the trainer has not moved for <paramref name="after"/> although the batch it waits for was handed out
    /// that long ago, that batch was lost on the way (a node stuck or a stream cut without notice): hand it out again.
    /// </summary>
    public BatchLease? ReleaseOverdue(TimeSpan after, DateTime now)
    {
        if (now - _movedAt < after || !_leased.TryGetValue(TrainerNext, out var waited) || now - waited.Issued < after) return null;
        Again(waited);
        return waited;
    }

    private void Again(BatchLease lease)
    {
        _leased.Remove(lease.Start);
        if (lease.End <= TrainerNext) return;
        _again.Add(lease.Start);
        Reissued++;
    }
}
