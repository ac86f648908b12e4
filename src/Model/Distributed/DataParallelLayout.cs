namespace LiteVae.Model.Distributed;

/// <summary>
/// How one optimizer step's global batch is split over ranks and micro-batches.
///
/// global batch = per-rank micro-batch × ranks × accumulation steps. The samples of a step come in one
/// deterministic global order (the data layer's), and rank r takes the contiguous slice
/// [r·b·A, (r+1)·b·A): its A micro-batches of b. Every sample of the step is used by exactly one rank, and
/// the gradient mean over ranks (all-reduce average of per-rank means) equals the mean over the global batch.
/// The same global order with 1 rank and A·R micro-batches (or batch R·b) visits the same samples.
/// </summary>
public sealed record DataParallelLayout(int Rank, int WorldSize, int MicroBatch, int Accumulation)
{
    public static DataParallelLayout Single(int batch, int accumulation = 1) => new(0, 1, batch, accumulation);

    /// <summary>Samples one rank consumes per optimizer step.</summary>
    public int PerRankBatch => MicroBatch * Accumulation;

    /// <summary>Samples all ranks together consume per optimizer step.</summary>
    public int GlobalBatch => MicroBatch * Accumulation * WorldSize;

    /// <summary>This rank's slice of a step's global batch: [Start, Start + Count).</summary>
    public (int Start, int Count) Slice => (Rank * PerRankBatch, PerRankBatch);

    public IEnumerable<string> Problems()
    {
        if (WorldSize < 1) yield return $"world size {WorldSize} must be at least 1";
        if (Rank < 0 || Rank >= WorldSize) yield return $"rank {Rank} must be in 0..{WorldSize - 1}";
        if (MicroBatch < 1) yield return $"micro-batch {MicroBatch} must be at least 1";
        if (Accumulation < 1) yield return $"accumulation {Accumulation} must be at least 1";
    }

    /// <summary>Takes this rank's slice of a step's global batch (any element type: sample ids, rows).</summary>
    public IReadOnlyList<T> TakeSlice<T>(IReadOnlyList<T> globalBatch)
    {
        if (globalBatch.Count != GlobalBatch)
            throw new ArgumentException($"a global batch of {GlobalBatch} samples ({MicroBatch} × {WorldSize} ranks × {Accumulation} accumulation) was expected, got {globalBatch.Count}.");
        var (start, count) = Slice;
        var slice = new T[count];
        for (int i = 0; i < count; i++) slice[i] = globalBatch[start + i];
        return slice;
    }
}
