using LiteVae.Actors.Ledger;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Tests.Ledger;

public class ShardLedgerTests
{
    private static readonly string[] Paths = ["s0.tar", "s1.tar", "s2.tar", "s3.tar", "s4.tar"];
    private static readonly int[] Sizes = [7, 12, 5, 9, 3];

    [Fact]
    public void Epoch_order_is_a_seeded_permutation_that_changes_per_epoch()
    {
        var a = ShardLedger.EpochOrder(50, 42, 0);
        Assert.Equal(Enumerable.Range(0, 50), a.Order());
        Assert.Equal(a, ShardLedger.EpochOrder(50, 42, 0));
        Assert.NotEqual(a, ShardLedger.EpochOrder(50, 42, 1));
        Assert.NotEqual(a, ShardLedger.EpochOrder(50, 43, 0));
    }

    [Fact]
    public void Without_failures_every_sample_is_consumed_once_and_epochs_close_in_order()
    {
        var sim = new Simulation(new ShardLedger(Paths, 1), new Random(5));
        sim.Run(steps: 2000, killEvery: 0);
        Assert.True(sim.ClosedEpochs.Count >= 3, $"closed {sim.ClosedEpochs.Count}");
        Assert.Equal(Enumerable.Range(0, sim.ClosedEpochs.Count), sim.ClosedEpochs);
        sim.AssertClosedEpochsComplete();
        Assert.Equal(0, sim.Ledger.Duplicated);
        Assert.Equal(0, sim.TrueDuplicates);
        Assert.Equal(0, sim.Ledger.ReLeased);
        Assert.Equal(0, sim.Ledger.Lost);
    }

    [Fact]
    public void Losing_data_nodes_loses_no_sample_and_counts_duplicates_exactly()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var sim = new Simulation(new ShardLedger(Paths, 3), new Random(seed));
            sim.Run(steps: 3000, killEvery: 37);
            Assert.True(sim.Kills > 0);
            Assert.True(sim.ClosedEpochs.Count >= 2, $"seed {seed}: closed {sim.ClosedEpochs.Count}");
            sim.AssertClosedEpochsComplete();
            Assert.Equal(0, sim.Ledger.Lost);
            Assert.Equal(sim.TrueDuplicates, sim.Ledger.Duplicated);
            Assert.True(sim.Ledger.ReLeased > 0);
        }
    }

    [Fact]
    public void Dropping_repeated_batches_trains_every_sample_exactly_once_across_node_losses()
    {
        long dropped = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            var sim = new Simulation(new ShardLedger(Paths, 3), new Random(seed), trainOnce: true);
            sim.Run(steps: 3000, killEvery: 37);
            Assert.True(sim.ClosedEpochs.Count >= 2, $"seed {seed}: closed {sim.ClosedEpochs.Count}");
            sim.AssertClosedEpochsComplete();
            Assert.Equal(0, sim.TrueDuplicates);
            Assert.Equal(0, sim.Ledger.Duplicated);
            Assert.Equal(0, sim.Ledger.Lost);
            dropped += sim.DroppedBatches;
        }
        Assert.True(dropped > 0, "no repeated batch ever reached the trainer: the drop path was not exercised");
    }

    [Theory]
    [InlineData(17, 61)]     // 34 samples an epoch: epochs open until they hold 2048 samples (61 × 34 = 2074)
    [InlineData(5000, 3)]    // a large data set never has more than three epochs open
    public void A_small_data_set_keeps_enough_epochs_open_to_fill_the_pipeline(int shardSize, int expectedOpen)
    {
        var ledger = new ShardLedger(["a.tar", "b.tar"], 0);
        var epochs = new HashSet<int>();
        // Before any shard has been read its size is unknown: three epochs, as for any data set.
        var unread = new List<LeaseGrant>();
        while (ledger.NextLease("w") is { } g) { unread.Add(g); epochs.Add(g.Epoch); }
        Assert.Equal(3, epochs.Count);
        // Once sizes are known (reads done, nothing trained yet), a small set opens more.
        foreach (var g in unread) ledger.LeaseRead(g.LeaseId, shardSize, IndexRanges.Empty);
        while (ledger.NextLease("w") is { } g)
        {
            epochs.Add(g.Epoch);
            ledger.LeaseRead(g.LeaseId, shardSize, IndexRanges.Empty);
        }
        Assert.Equal(expectedOpen, epochs.Count);
        Assert.InRange(epochs.Count, 3, ShardLedger.MaxOpenEpochsSmallData);
        // Training the oldest epoch closes it, and one more opens in its place.
        var closed = ledger.Consumed(Enumerable.Range(0, 2).SelectMany(s => Enumerable.Range(0, shardSize).Select(i => new SampleId(0, s, i))));
        Assert.Equal([0], closed);
        Assert.NotNull(ledger.NextLease("w"));
    }

    [Fact]
    public void A_relisted_shard_skips_consumed_and_bad_samples()
    {
        var ledger = new ShardLedger(["a.tar"], 0);
        var g = ledger.NextLease("w1")!;
        Assert.Equal(IndexRanges.Empty, g.Skip);
        ledger.Consumed([new SampleId(0, 0, 0), new SampleId(0, 0, 1), new SampleId(0, 0, 4)]);
        ledger.LeaseRead(g.LeaseId, 6, IndexRanges.From([3]));
        Assert.Equal(1, ledger.WorkerLost("w1"));
        var again = ledger.NextLease("w2")!;
        Assert.Equal(0, again.Shard);
        Assert.Equal([0, 1, 3, 4], again.Skip.Indices());
        Assert.Equal(1, ledger.ReLeased);
        Assert.Equal(1, ledger.BadSamples);
        // Consuming the rest closes epoch 0 even before the new lease reports.
        var closed = ledger.Consumed([new SampleId(0, 0, 2), new SampleId(0, 0, 5)]);
        Assert.Equal([0], closed);
        Assert.Equal(1, ledger.CurrentEpoch);
        Assert.False(ledger.IsLeaseActive(again.LeaseId));
    }

    [Fact]
    public void A_shard_failing_three_times_is_abandoned_and_its_unconsumed_samples_are_lost()
    {
        var ledger = new ShardLedger(["a.tar", "b.tar"], 0);
        var first = ledger.NextLease("w")!;
        ledger.Consumed([new SampleId(0, first.Shard, 0)]);
        ledger.LeaseRead(first.LeaseId, 4, IndexRanges.Empty);
        ledger.WorkerLost("w");
        for (int i = 0; i < ShardLedger.MaxFailures; i++)
        {
            var g = ledger.NextLease("w")!;
            if (g.Shard != first.Shard) { ledger.LeaseRead(g.LeaseId, 0, IndexRanges.Empty); g = ledger.NextLease("w")!; }
            Assert.Equal(first.Shard, g.Shard);
            ledger.LeaseFailed(g.LeaseId);
        }
        Assert.Equal(1, ledger.Abandoned);
        Assert.Equal(3, ledger.Lost);
    }

    [Fact]
    public void Restore_releases_open_epochs_skipping_what_the_checkpoint_consumed()
    {
        var state = new ConsumedState(2, [new ShardConsumption(2, 1, IndexRanges.From([0, 1, 2]))], Duplicates: 4);
        var ledger = new ShardLedger(["a.tar", "b.tar"], 9);
        ledger.Restore(state);
        Assert.Equal(2, ledger.CurrentEpoch);
        var leases = new[] { ledger.NextLease("w")!, ledger.NextLease("w")! };
        Assert.All(leases, l => Assert.Equal(2, l.Epoch));
        Assert.Equal([0, 1, 2], leases.Single(l => l.Shard == 1).Skip.Indices());
        Assert.Equal(IndexRanges.Empty, leases.Single(l => l.Shard == 0).Skip);
        Assert.Equal(0, ledger.Duplicated);   // the trainer's dropped repeats are its own count, not samples trained twice
    }

    [Fact]
    public void Samples_of_a_dropped_batch_are_read_again_once_their_lease_is_read_through()
    {
        var ledger = new ShardLedger(["a.tar", "b.tar"], 0);
        var a = ledger.NextLease("w")!;
        var b = ledger.NextLease("w")!;
        // Shard a was read through; samples 0..2 of it travelled in a batch the trainer dropped (it repeated
        // a sample), 3 was trained and 4 is still in flight. Shard b is still being read: its dropped sample
        // waits for the end of that read.
        ledger.LeaseRead(a.LeaseId, 5, IndexRanges.Empty);
        ledger.Consumed([new SampleId(0, a.Shard, 3)]);
        ledger.Dropped([new SampleId(0, a.Shard, 0), new SampleId(0, a.Shard, 1), new SampleId(0, a.Shard, 2), new SampleId(0, b.Shard, 0)]);
        Assert.False(ledger.IsLeaseActive(a.LeaseId));
        Assert.True(ledger.IsLeaseActive(b.LeaseId));
        var again = ledger.NextLease("w")!;
        Assert.Equal((0, a.Shard), (again.Epoch, again.Shard));
        Assert.Equal([3, 4], again.Skip.Indices());   // only the returned samples: 4 would come twice

        ledger.Consumed([new SampleId(0, b.Shard, 1)]);
        ledger.LeaseRead(b.LeaseId, 3, IndexRanges.Empty);
        Assert.False(ledger.IsLeaseActive(b.LeaseId));
        var bAgain = ledger.NextLease("w")!;
        Assert.Equal((0, b.Shard), (bAgain.Epoch, bAgain.Shard));
        Assert.Equal([1, 2], bAgain.Skip.Indices());

        // A lease lost is read again in full (skipping only what was consumed): its batches in flight are gone.
        Assert.Equal(2, ledger.WorkerLost("w"));
        var full = new[] { ledger.NextLease("w")!, ledger.NextLease("w")! };
        Assert.Equal([3], full.Single(l => l.Shard == a.Shard).Skip.Indices());
        Assert.Equal([1], full.Single(l => l.Shard == b.Shard).Skip.Indices());

        // Everything trained once: the epoch closes, nothing lost, nothing trained twice.
        ledger.Consumed([new SampleId(0, a.Shard, 0), new SampleId(0, a.Shard, 1), new SampleId(0, a.Shard, 2), new SampleId(0, a.Shard, 4)]);
        ledger.Consumed([new SampleId(0, b.Shard, 2)]);
        Assert.Equal([0], ledger.Consumed([new SampleId(0, b.Shard, 0)]));
        Assert.Equal((0L, 0L), (ledger.Lost, ledger.Duplicated));
    }

    [Fact]
    public void An_epoch_that_closes_with_nothing_consumed_is_reported()
    {
        var ledger = new ShardLedger(["a.tar", "b.tar"], 0);
        var a = ledger.NextLease("w")!;
        var b = ledger.NextLease("w")!;
        ledger.LeaseRead(a.LeaseId, 2, IndexRanges.From([0, 1]));
        Assert.Equal([0], ledger.LeaseRead(b.LeaseId, 1, IndexRanges.From([0])));
        Assert.True(ledger.ClosedWithoutSamples(0));

        // One good sample is enough for an epoch to count.
        var c = ledger.NextLease("w")!;
        var d = ledger.NextLease("w")!;
        ledger.LeaseRead(c.LeaseId, 2, IndexRanges.From([1]));
        ledger.LeaseRead(d.LeaseId, 1, IndexRanges.From([0]));
        Assert.Equal([1], ledger.Consumed([new SampleId(1, c.Shard, 0)]));
        Assert.False(ledger.ClosedWithoutSamples(1));
    }

    [Fact]
    public void Stale_read_leases_are_released_after_the_timeout()
    {
        var now = new DateTime(2026, 1, 1);
        var ledger = new ShardLedger(["a.tar"], 0, () => now);
        var g = ledger.NextLease("w")!;
        ledger.LeaseRead(g.LeaseId, 3, IndexRanges.Empty);
        now += TimeSpan.FromSeconds(30);
        Assert.Equal(0, ledger.ReleaseStale(TimeSpan.FromSeconds(60)));
        now += TimeSpan.FromSeconds(31);
        Assert.Equal(1, ledger.ReleaseStale(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, ledger.NextLease("w")!.Shard);
    }

    [Fact]
    public void Consumed_log_finds_repeats_and_round_trips_through_its_state()
    {
        var log = new ConsumedLog();
        SampleId[] first = [new(0, 1, 5), new(0, 1, 6), new(1, 0, 0)];
        Assert.Equal(0, log.Repeats(first));
        log.Add(first);
        Assert.Equal(1, log.Repeats([new SampleId(0, 1, 5), new SampleId(0, 1, 7)]));   // 5 was trained
        Assert.Equal(1, log.Repeats([new SampleId(0, 3, 1), new SampleId(0, 3, 1)]));   // twice in one batch
        Assert.Equal(0, log.Repeats([new SampleId(0, 1, 7)]));                         // Repeats records nothing
        log.Dropped(1);
        log.CloseThrough(0);
        Assert.Equal(1, log.Repeats([new SampleId(0, 2, 0)]));   // epoch 0 is closed: anything of it is a repeat
        log.Dropped(1);
        var state = log.ToState();
        Assert.Equal(1, state.FirstOpenEpoch);
        Assert.Equal(2, state.Duplicates);
        Assert.Equal([new ShardConsumption(1, 0, IndexRanges.From([0]))], state.Shards);
        Assert.Equal(state, ConsumedLog.FromState(state).ToState());
    }

    [Fact]
    public void Index_ranges_compress_runs_and_answer_membership()
    {
        var r = IndexRanges.From([5, 1, 2, 3, 9, 10, 3]);
        Assert.Equal([1, 5, 9], r.Starts);
        Assert.Equal([4, 6, 11], r.Ends);
        Assert.Equal(6, r.Count);
        Assert.True(r.Contains(10));
        Assert.False(r.Contains(4));
        Assert.False(r.Contains(11));
        Assert.Equal([1, 2, 3, 5, 9, 10], r.Indices());
    }

    /// <summary>
    /// An independent model of the data path: workers hold leases and produce batches of 4 from the
    /// samples a lease does not skip; batches wait in flight; the trainer consumes one batch per step and
    /// reports it; killing a worker drops its unconsumed batches. The truth (how often each sample was
    /// consumed) is counted here, apart from the ledger.
    /// </summary>
    /// <param name="trainOnce">The trainer keeps a ConsumedLog and drops batches that repeat a trained
    /// sample (what DeviceTrainer does); otherwise it trains whatever arrives.</param>
    private sealed class Simulation(ShardLedger ledger, Random rng, bool trainOnce = false)
    {
        private readonly ConsumedLog _log = new();
        public long DroppedBatches { get; private set; }
        private sealed record Cursor(LeaseGrant Lease, string Worker, Queue<int> Remaining);

        private readonly List<Cursor> _cursors = [];
        private readonly List<(string Worker, SampleId[] Samples)> _inFlight = [];
        private readonly Dictionary<SampleId, int> _consumedCount = [];
        private int _workerGen;
        private readonly string[] _workers = ["w0", "w1"];

        public ShardLedger Ledger => ledger;
        public List<int> ClosedEpochs { get; } = [];
        public long TrueDuplicates { get; private set; }
        public int Kills { get; private set; }

        public void Run(int steps, int killEvery)
        {
            for (int step = 1; step <= steps; step++)
            {
                foreach (var w in _workers)
                    if (_cursors.Count(c => c.Worker == w) < 2 && ledger.NextLease(w) is { } g)
                        _cursors.Add(new Cursor(g, w, new Queue<int>(Enumerable.Range(0, Sizes[g.Shard]).Where(i => !g.Skip.Contains(i)))));
                // Each worker emits one batch of up to 4 samples from its leases.
                foreach (var w in _workers)
                {
                    var batch = new List<SampleId>();
                    foreach (var c in _cursors.Where(c => c.Worker == w).ToList())
                    {
                        while (batch.Count < 4 && c.Remaining.Count > 0)
                            batch.Add(new SampleId(c.Lease.Epoch, c.Lease.Shard, c.Remaining.Dequeue()));
                        if (c.Remaining.Count == 0)
                        {
                            _cursors.Remove(c);
                            ClosedEpochs.AddRange(ledger.LeaseRead(c.Lease.LeaseId, Sizes[c.Lease.Shard], IndexRanges.Empty));
                        }
                        if (batch.Count == 4) break;
                    }
                    if (batch.Count > 0) _inFlight.Add((w, batch.ToArray()));
                }
                // The trainer consumes the oldest batch in flight.
                if (_inFlight.Count > 0)
                {
                    var (_, samples) = _inFlight[0];
                    _inFlight.RemoveAt(0);
                    if (trainOnce && _log.Repeats(samples) > 0)
                    {
                        DroppedBatches++;
                        ledger.Dropped(samples);
                        continue;
                    }
                    _log.Add(samples);
                    foreach (var s in samples)
                    {
                        _consumedCount[s] = _consumedCount.GetValueOrDefault(s) + 1;
                        if (_consumedCount[s] > 1) TrueDuplicates++;
                    }
                    var closed = ledger.Consumed(samples);
                    ClosedEpochs.AddRange(closed);
                    foreach (int e in closed) _log.CloseThrough(e);
                }
                if (killEvery > 0 && step % killEvery == 0)
                {
                    var victim = _workers[rng.Next(_workers.Length)];
                    Kills++;
                    // In-flight batches of the dead node: some reach the trainer, the rest are lost.
                    _inFlight.RemoveAll(b => b.Worker == victim && rng.Next(2) == 0);
                    _cursors.RemoveAll(c => c.Worker == victim);
                    ledger.WorkerLost(victim);
                    int idx = Array.IndexOf(_workers, victim);
                    _workers[idx] = $"w{idx}-{++_workerGen}";
                }
            }
        }

        public void AssertClosedEpochsComplete()
        {
            foreach (int e in ClosedEpochs)
                for (int sh = 0; sh < Sizes.Length; sh++)
                    for (int i = 0; i < Sizes[sh]; i++)
                        Assert.True(_consumedCount.ContainsKey(new SampleId(e, sh, i)), $"epoch {e} shard {sh} sample {i} never consumed");
        }
    }
}
