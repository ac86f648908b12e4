namespace LiteVae.Model.Distributed;

/// <summary>
/// How one optimizer step's global batch is split over ranks and micro-batches.
///
/// global batch = micro-batch b × ranks R × accumulation steps A. The samples of a step come in one
/// deterministic global order (the data layer's), grouped into A global micro-batches of R·b samples;
/// global micro-batch m is split across the ranks, rank r taking samples [m·R·b + r·b, m·R·b + (r+1)·b).
/// So every sample of the step is used by exactly one rank, the mean of the per-rank mean gradients
/// (all-reduce average) is the gradient of the mean loss over the global batch, and a single rank running
/// A micro-batches of R·b over the same order sees the same samples in the same micro-batch; per-sample
/// randomness drawn per global micro-batch and sliced by rank (the posterior noise) matches it as well.
/// </summary>
public sealed record DataParallelLayout(int Rank, int WorldSize, int MicroBatch, int Accumulation)
{
    public static DataParallelLayout Single(int batch, int accumulation = 1) => new(0, 1, batch, accumulation);

    /// <summary>Samples one rank consumes per optimizer step.</summary>
    public int PerRankBatch => MicroBatch * Accumulation;

    /// <summary>Samples all ranks together consume per optimizer step.</summary>
    public int GlobalBatch => MicroBatch * Accumulation * WorldSize;

    /// <summary>Samples of one global micro-batch (all ranks).</summary>
    public int GlobalMicroBatch => MicroBatch * WorldSize;

    /// <summary>Where this rank's part of every global micro-batch starts inside it.</summary>
    public int OffsetInMicroBatch => Rank * MicroBatch;

    public IEnumerable<string> Problems()
    {
        if (WorldSize < 1) yield return $"world size {WorldSize} must be at least 1";
        if (Rank < 0 || Rank >= WorldSize) yield return $"rank {Rank} must be in 0..{WorldSize - 1}";
        if (MicroBatch < 1) yield return $"micro-batch {MicroBatch} must be at least 1";
        if (Accumulation < 1) yield return $"accumulation {Accumulation} must be at least 1";
    }

    /// <summary>Positions (in the step's global order) of this rank's samples, micro-batch by micro-batch.</summary>
    public IEnumerable<int> Positions()
    {
        for (int m = 0; m < Accumulation; m++)
            for (int i = 0; i < MicroBatch; i++)
                yield return m * GlobalMicroBatch + OffsetInMicroBatch + i;
    }

    /// <summary>
    /// This rank's rows of a step's global batch stored row-major (e.g. N×3×H×W uint8 pixels, N =
    /// <see cref="GlobalBatch"/>): <see cref="PerRankBatch"/> rows in <see cref="Positions"/> order.
    /// </summary>
    public T[] SliceRows<T>(ReadOnlySpan<T> globalRows)
    {
        if (globalRows.Length % GlobalBatch != 0)
            throw new ArgumentException($"{globalRows.Length} values are not {GlobalBatch} equal rows ({MicroBatch} × {WorldSize} ranks × {Accumulation} accumulation).");
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
            throw new ArgumentException($"a global batch of {GlobalBatch} samples ({MicroBatch} × {WorldSize} ranks × {Accumulation} accumulation) was expected, got {globalBatch.Count}.");
        return Positions().Select(p => globalBatch[p]).ToArray();
    }
}
