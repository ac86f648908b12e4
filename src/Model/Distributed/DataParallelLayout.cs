namespace LiteVae.Model.Distributed;

/// <summary>
/// How one optimizer step's global batch of <see cref="GlobalBatch"/> samples is split over ranks and
/// micro-batches (gradient accumulation).
///
/// The samples of a step come in one deterministic global order (the data layer's). They form
/// <see cref="Accumulation"/> global micro-batches of equal size (the first ones one larger when it does not
/// divide), and global micro-batch m is split over the ranks the same way, rank r taking a contiguous part.
/// So every sample of the step is used by exactly one rank, and a single rank running the same micro-batches
/// over the same order sees the same samples in the same micro-batch; per-sample randomness drawn per global
/// micro-batch and sliced by rank (the posterior noise) matches it as well. Each rank scales the mean loss of
/// its part of micro-batch m by <see cref="Scale"/> = ranks × part / global batch, so the average over ranks
/// (the all-reduce) of the summed gradients is the gradient of the mean loss over the whole global batch, even
/// when a short batch (bad samples skipped) does not divide evenly. With equal parts the scale is 1/accumulation.
/// </summary>
public sealed record DataParallelLayout(int Rank, int WorldSize, int Accumulation, int GlobalBatch)
{
    /// <summary>One rank, <paramref name="batch"/> samples in <paramref name="accumulation"/> micro-batches.</summary>
    public static DataParallelLayout Single(int batch, int accumulation = 1) => new(0, 1, accumulation, batch);

    /// <summary>Equal parts: every rank gets <paramref name="microBatch"/> samples of each of the micro-batches.</summary>
    public static DataParallelLayout Equal(int rank, int worldSize, int microBatch, int accumulation) =>
        new(rank, worldSize, accumulation, microBatch * worldSize * accumulation);

    /// <summary>Part <paramref name="i"/> of <paramref name="total"/> items cut into <paramref name="parts"/> near-equal
    /// contiguous parts (the first ones one larger).</summary>
    public static (int Start, int Count) Part(int total, int parts, int i)
    {
        int q = total / parts, r = total % parts;
        return (i * q + Math.Min(i, r), q + (i < r ? 1 : 0));
    }

    /// <summary>Global micro-batch <paramref name="m"/>: where it starts in the global batch and how many samples.</summary>
    public (int Start, int Count) Micro(int m) => Part(GlobalBatch, Accumulation, m);

    /// <summary>This rank's part of micro-batch <paramref name="m"/>: its offset inside the micro-batch and its size.</summary>
    public (int Offset, int Count) RankPart(int m) => Part(Micro(m).Count, WorldSize, Rank);

    /// <summary>Samples this rank trains per step.</summary>
    public int PerRankBatch => Enumerable.Range(0, Accumulation).Sum(m => RankPart(m).Count);

    /// <summary>What the mean loss of this rank's part of micro-batch <paramref name="m"/> is multiplied by.</summary>
    public double Scale(int m) => (double)WorldSize * RankPart(m).Count / GlobalBatch;

    public IEnumerable<string> Problems()
    {
        if (WorldSize < 1) yield return $"world size {WorldSize} must be at least 1";
        if (Rank < 0 || Rank >= WorldSize) yield return $"rank {Rank} must be in 0..{WorldSize - 1}";
        if (Accumulation < 1) yield return $"accumulation {Accumulation} must be at least 1";
        if (GlobalBatch < 1) yield return $"global batch {GlobalBatch} must be at least 1";
    }

    /// <summary>Positions (in the step's global order) of this rank's samples, micro-batch by micro-batch.</summary>
    public IEnumerable<int> Positions()
    {
        for (int m = 0; m < Accumulation; m++)
        {
            var (start, _) = Micro(m);
            var (offset, count) = RankPart(m);
            for (int i = 0; i < count; i++) yield return start + offset + i;
        }
    }

    /// <summary>
    /// This rank's rows of a step's global batch stored row-major (e.g. N×3×H×W uint8 pixels, N =
    /// <see cref="GlobalBatch"/>): <see cref="PerRankBatch"/> rows in <see cref="Positions"/> order.
    /// </summary>
    public T[] SliceRows<T>(ReadOnlySpan<T> globalRows)
    {
        if (globalRows.Length % GlobalBatch != 0)
            throw new ArgumentException($"{globalRows.Length} values are not {GlobalBatch} equal rows (the global batch).");
        int row = globalRows.Length / GlobalBatch;
        var mine = new T[PerRankBatch * row];
        int i = 0;
        foreach (int p in Positions())
            globalRows.Slice(p * row, row).CopyTo(mine.AsSpan(i++ * row, row));
        return mine;
    }

    /// <summary>Takes this rank's samples of a step's global batch (any element type: sample ids, rows).</summary>
    public IReadOnlyList<T> TakeSlice<T>(IReadOnlyList<T> globalBatch)
    {
        if (globalBatch.Count != GlobalBatch)
            throw new ArgumentException($"a global batch of {GlobalBatch} samples was expected, got {globalBatch.Count}.");
        return Positions().Select(p => globalBatch[p]).ToArray();
    }
}
