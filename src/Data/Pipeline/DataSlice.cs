namespace LiteVae.Data.Pipeline;

/// <summary>
/// Data-parallel share of the logical sequence: the sequence is cut into consecutive global batches
/// of <see cref="GlobalBatch"/> samples, and this rank keeps positions [Begin, End) of each. Samples
/// outside the slice are dropped before decoding, so ranks do not decode each other's images. Bad
/// samples are skipped inside each rank's share, so a rank's batch is filled from its next samples.
/// </summary>
public sealed record DataSlice(int GlobalBatch, int Begin, int End)
{
    public void Validate()
    {
        if (GlobalBatch < 1 || Begin < 0 || End <= Begin || End > GlobalBatch)
            throw new ArgumentException($"data slice [{Begin}, {End}) of {GlobalBatch} is invalid: need 0 <= begin < end <= global batch.");
    }

    public bool Contains(long index)
    {
        long r = index % GlobalBatch;
        return r >= Begin && r < End;
    }

    /// <summary>Rank <paramref name="rank"/> of <paramref name="ranks"/>, equal shares (the first ranks get one more when it does not divide).</summary>
    public static DataSlice ForRank(int globalBatch, int rank, int ranks)
    {
        if (ranks < 1 || rank < 0 || rank >= ranks || globalBatch < ranks)
            throw new ArgumentException($"rank {rank} of {ranks} with global batch {globalBatch} is invalid.");
        int begin = (int)((long)globalBatch * rank / ranks), end = (int)((long)globalBatch * (rank + 1) / ranks);
        return new DataSlice(globalBatch, begin, end);
    }
}
