using LiteVae.Actors.Coordination;

namespace LiteVae.Actors.Tests.Coordination;

/// <summary>
/// The batch ledger by simulation: data nodes that take leases, deliver batches late or never, die and come
/// back; a trainer that trains only the batch that starts where it stands. Whatever happens, the trainer
/// reaches the end having trained every span once, in order, and is never starved for good.
/// </summary>
public sealed class BatchLedgerTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Leases_go_out_in_order_only_as_far_ahead_as_the_trainer_holds()
    {
        var ledger = new BatchLedger(batchSize: 4);
        ledger.Start(next: 100, ahead: 3, T0);
        var leases = Enumerable.Range(0, 5).Select(_ => ledger.Next("a", T0)).ToList();
        Assert.Equal([100L, 104, 108], leases.Take(3).Select(l => l!.Start));
        Assert.Null(leases[3]);   // three batches ahead of the trainer: enough
        ledger.Trained(104, T0);
        Assert.Equal(112, ledger.Next("a", T0)!.Start);
        Assert.Equal(3, ledger.Outstanding);   // 104, 108, 112: the first is done
    }

    [Fact]
    public void A_lost_node_s_untrained_batches_go_first_to_the_others()
    {
        var ledger = new BatchLedger(batchSize: 2);
        ledger.Start(0, ahead: 4, T0);
        Assert.Equal(0, ledger.Next("a", T0)!.Start);
        Assert.Equal(2, ledger.Next("b", T0)!.Start);
        Assert.Equal(4, ledger.Next("a", T0)!.Start);
        ledger.Trained(2, T0);                         // the trainer has batch 0 (from a)
        Assert.Equal(1, ledger.WorkerLost("a"));       // its batch 4 is not trained yet; batch 0 is
        Assert.Equal(4, ledger.Next("b", T0)!.Start);  // handed out again before anything new
        Assert.Equal(6, ledger.Next("b", T0)!.Start);
        Assert.Equal(1, ledger.Reissued);
    }

    [Fact]
    public void A_batch_the_trainer_waits_for_too_long_is_leased_again()
    {
        var ledger = new BatchLedger(batchSize: 8);
        ledger.Start(0, ahead: 2, T0);
        var lost = ledger.Next("stuck", T0)!;
        ledger.Next("b", T0);
        Assert.Null(ledger.ReleaseOverdue(TimeSpan.FromSeconds(30), T0.AddSeconds(10)));
        Assert.Equal(lost, ledger.ReleaseOverdue(TimeSpan.FromSeconds(30), T0.AddSeconds(31)));
        Assert.Equal(0, ledger.Next("b", T0.AddSeconds(31))!.Start);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void A_simulated_cluster_trains_every_span_once_in_order_whatever_its_nodes_do(int seed)
    {
        const int batch = 3, ahead = 4, steps = 400;
        var rng = new Random(seed);
        var ledger = new BatchLedger(batch);
        var now = T0;
        ledger.Start(0, ahead, now);
        var nodes = Enumerable.Range(0, 3).Select(i => $"node-{i}").ToList();
        var alive = nodes.ToHashSet();
        var inFlight = new List<(long Start, string Node, DateTime Due)>();   // batches on their way to the trainer
        var held = new SortedSet<long>();                                      // the trainer's intake
        long next = 0, dropped = 0;
        var trainedStarts = new List<long>();
        for (int tick = 0; tick < 200_000 && trainedStarts.Count < steps; tick++)
        {
            now = now.AddMilliseconds(100);
            // Nodes ask for work, sometimes die (their batches die with them, or arrive late anyway) or come back.
            foreach (var n in alive.ToList())
            {
                if (rng.NextDouble() < 0.5 && ledger.Next(n, now) is { } lease)
                    inFlight.Add((lease.Start, n, now.AddMilliseconds(rng.Next(100, 2000))));
                if (rng.NextDouble() < 0.003)
                {
                    alive.Remove(n);
                    if (rng.NextDouble() < 0.5) inFlight.RemoveAll(f => f.Node == n);
                    ledger.WorkerLost(n);
                }
            }
            if (alive.Count < 3 && rng.NextDouble() < 0.01) alive.Add(nodes.First(n => !alive.Contains(n)));
            foreach (var f in inFlight.Where(f => f.Due <= now).ToList())
            {
                inFlight.Remove(f);
                if (rng.NextDouble() < 0.02) continue;   // lost on a stream cut without notice
                if (f.Start < next || held.Contains(f.Start) || f.Start >= next + ahead * batch) dropped++;
                else held.Add(f.Start);
            }
            // The trainer trains what starts where it stands, then tells the ledger.
            while (held.Remove(next))
            {
                trainedStarts.Add(next);
                next += batch;
                ledger.Trained(next, now);
            }
            ledger.ReleaseOverdue(TimeSpan.FromSeconds(5), now);
        }
        Assert.True(trainedStarts.Count >= steps, $"the trainer got {trainedStarts.Count} batches, stalled");
        Assert.Equal(Enumerable.Range(0, trainedStarts.Count).Select(k => (long)k * batch), trainedStarts);
        Assert.True(ledger.Reissued > 0);
    }
}
