using LiteVae.Data.Order;

namespace LiteVae.Data.Audit;

/// <summary>
/// How often each sample of one epoch that the run had reached was trained: <see cref="Once"/>, <see cref="Twice"/>
/// (more than once: a defect), <see cref="Never"/> (neither trained nor skipped as bad: a defect) and
/// <see cref="Bad"/> (skipped as unreadable). <see cref="Reached"/>: samples of the epoch before the run's
/// position (all of them once the epoch is complete). <see cref="Ahead"/>: trained although the run had not
/// reached them (a defect).
/// </summary>
public sealed record EpochAudit(int Epoch, bool Complete, long Reached, long Once, long Twice, long Never, long Bad, long Ahead);

/// <summary>The audit of a run from its training log (<see cref="TrainingLog"/>): per epoch and for the whole run.</summary>
public sealed record AuditReport(IReadOnlyList<EpochAudit> Epochs, long Steps, long Trained, long Skipped)
{
    public EpochAudit Whole => new(-1, Epochs.All(e => e.Complete), Epochs.Sum(e => e.Reached), Epochs.Sum(e => e.Once),
        Epochs.Sum(e => e.Twice), Epochs.Sum(e => e.Never), Epochs.Sum(e => e.Bad), Epochs.Sum(e => e.Ahead));

    /// <param name="order">The run's sample order (from its config and shard index).</param>
    /// <param name="nextSample">Where the run stands (its last checkpoint's data position): every sample numbered
    /// below it should have been trained once or skipped as bad, and none above it.</param>
    public static AuditReport Compute(SampleOrder order, IReadOnlyList<LoggedSample> log, long nextSample)
    {
        var sizes = order.ShardSizes;
        long perEpoch = order.SamplesPerEpoch;
        var offsets = new long[sizes.Count];
        for (int i = 1; i < offsets.Length; i++) offsets[i] = offsets[i - 1] + sizes[i - 1];
        int lastEpoch = perEpoch == 0 ? -1 : (int)((Math.Max(nextSample, 1) - 1) / perEpoch);
        if (log.Count > 0) lastEpoch = Math.Max(lastEpoch, log.Max(r => r.Epoch));
        var trained = new Dictionary<int, byte[]>();
        var bad = new Dictionary<int, bool[]>();
        foreach (var r in log)
        {
            if (r.Shard < 0 || r.Shard >= sizes.Count || r.Index < 0 || r.Index >= sizes[r.Shard])
                throw new InvalidDataException($"the training log names sample {r.Index} of shard {r.Shard}, which the shard index does not have: " +
                                               "the shards changed since the run was trained.");
            long at = offsets[r.Shard] + r.Index;
            if (r.Skipped)
            {
                if (!bad.TryGetValue(r.Epoch, out var b)) bad[r.Epoch] = b = new bool[perEpoch];
                b[at] = true;
            }
            else
            {
                if (!trained.TryGetValue(r.Epoch, out var t)) trained[r.Epoch] = t = new byte[perEpoch];
                if (t[at] < 255) t[at]++;
            }
        }
        var epochs = new List<EpochAudit>();
        for (int e = 0; e <= lastEpoch; e++)
        {
            long first = e * perEpoch;
            bool complete = first + perEpoch <= nextSample;
            // Which samples of this epoch the run has reached: all of a complete epoch, a prefix of the order otherwise.
            var reached = new bool[perEpoch];
            for (long n = first; n < Math.Min(first + perEpoch, nextSample); n++)
            {
                var s = order.At(n);
                reached[offsets[s.Shard] + s.Index] = true;
            }
            var t = trained.GetValueOrDefault(e);
            var b = bad.GetValueOrDefault(e);
            long reachedCount = 0, once = 0, twice = 0, never = 0, badCount = 0, ahead = 0;
            for (long i = 0; i < perEpoch; i++)
            {
                int times = t?[i] ?? 0;
                bool isBad = b?[i] ?? false;
                if (!reached[i])
                {
                    if (times > 0 || isBad) ahead++;
                    continue;
                }
                reachedCount++;
                if (isBad) badCount++;
                if (times == 1) once++;
                else if (times > 1) twice++;
                else if (!isBad) never++;
            }
            epochs.Add(new EpochAudit(e, complete, reachedCount, once, twice, never, badCount, ahead));
        }
        return new AuditReport(epochs, log.Select(r => r.Step).Distinct().LongCount(), log.LongCount(r => !r.Skipped), log.LongCount(r => r.Skipped));
    }
}
