namespace LiteVae.Data.Pipeline;

/// <summary>How a run keeps its global batch when the number of GPUs changes.</summary>
public enum GlobalBatchPolicy
{
    /// <summary>The global batch stays the same; the gradient-accumulation count absorbs the change in ranks
    /// (global = micro-batch × ranks × accumulation must hold exactly). Steps consume the same samples as before.</summary>
    KeepGlobalBatch,
    /// <summary>The per-rank micro-batch and accumulation stay; the global batch becomes micro × ranks × accumulation.
    /// The run still consumes the same sample sequence, cut into steps of the new size.</summary>
    KeepMicroBatch,
}

/// <summary>
/// How N data nodes and G ranks share one global sample sequence, so that a run checkpointed with N/G
/// resumes with any N'/G' and consumes the same samples in the same order. The sequence is the
/// pipeline's logical order (a pure function of seed, epoch and shards) numbered across epochs
/// (<see cref="DataPosition.Global"/>). From the resume point (<paramref name="Origin"/>) on it is cut into
/// global batches; global batch k is produced by data node k mod N (which decodes only its own global
/// batches); rank r trains on positions [Begin_r, End_r) of every global batch (equal shares), split
/// into <see cref="Accumulation"/> micro-batches. The position saved with a checkpoint is the
/// <see cref="Batch.PositionAfter"/> of the last global batch the step consumed: nothing in it depends on
/// N or G, so it is the whole state a resume needs.
/// </summary>
/// <param name="Origin">Run-wide sample number where this plan starts cutting global batches (the saved position's Global).</param>
public sealed record ElasticPlan(int GlobalBatch, int DataNodes, int Ranks, int Accumulation, long Origin)
{
    public static ElasticPlan Create(GlobalBatchPolicy policy, int globalBatch, int microBatch, int accumulation, int dataNodes, int ranks, long origin)
    {
        if (dataNodes < 1 || ranks < 1 || microBatch < 1 || accumulation < 1)
            throw new ArgumentException($"elastic plan: data nodes {dataNodes}, ranks {ranks}, micro-batch {microBatch}, accumulation {accumulation} must all be at least 1.");
        if (policy == GlobalBatchPolicy.KeepMicroBatch)
            return new ElasticPlan(checked(microBatch * ranks * accumulation), dataNodes, ranks, accumulation, origin);
        if (globalBatch % (microBatch * ranks) != 0)
            throw new ArgumentException(
                $"global batch {globalBatch} cannot be kept with {ranks} rank(s) of micro-batch {microBatch}: it must be a multiple of " +
                $"{microBatch * ranks}. Choose a micro-batch that divides {globalBatch / ranks}, or set the policy to keep-micro-batch.");
        return new ElasticPlan(globalBatch, dataNodes, ranks, globalBatch / (microBatch * ranks), origin);
    }

    /// <summary>The data node that produces global batch <paramref name="k"/> (counted from the origin).</summary>
    public int NodeOf(long k) => (int)(k % DataNodes);

    /// <summary>The slice a data node's pipeline runs with: whole global batches, its own ones only.</summary>
    public DataSlice NodeSlice(int node)
    {
        if (node < 0 || node >= DataNodes) throw new ArgumentOutOfRangeException(nameof(node));
        return new DataSlice(GlobalBatch, 0, GlobalBatch, DataNodes, node, Origin);
    }

    /// <summary>Positions [Begin, End) of each global batch that rank <paramref name="rank"/> trains on.</summary>
    public (int Begin, int End) RankShare(int rank)
    {
        var s = DataSlice.ForRank(GlobalBatch, rank, Ranks);
        return (s.Begin, s.End);
    }

    /// <summary>
    /// Which samples of a global batch (indexes into <see cref="Batch.Samples"/>) rank <paramref name="rank"/>
    /// trains on. Shares are cut by the samples' run-wide numbers, not by their place in the batch: when a
    /// bad sample was skipped (a short batch) it leaves a hole in one rank's part instead of shifting the others.
    /// </summary>
    public IReadOnlyList<int> RankPart(IReadOnlyList<SampleInfo> samples, int rank)
    {
        var (begin, end) = RankShare(rank);
        var mine = new List<int>();
        for (int i = 0; i < samples.Count; i++)
        {
            long offset = (samples[i].Global - Origin) % GlobalBatch;
            if (offset >= begin && offset < end) mine.Add(i);
        }
        return mine;
    }
}
