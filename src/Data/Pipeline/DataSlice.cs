namespace LiteVae.Data.Pipeline;

/// <summary>
/// Data-parallel share of the logical sequence: the run's samples, numbered across epochs from
/// <see cref="Origin"/> on (<see cref="DataPosition.Global"/>), are cut into consecutive global batches of
/// <see cref="GlobalBatch"/> samples, and this slice keeps positions [Begin, End) of each, and of those
/// global batches only every <see cref="Stride"/>-th, starting with number <see cref="Phase"/> (how several
/// data nodes share the global batches). Samples outside the slice are dropped before decoding, so ranks
/// and nodes do not decode each other's images. A batch never spans two global batches: when bad samples
/// were skipped, the batch of that global batch is short, so every other sample keeps its step whatever
/// the number of ranks or nodes (what elastic resume relies on, see <see cref="ElasticPlan"/>).
/// </summary>
public sealed record DataSlice(int GlobalBatch, int Begin, int End, int Stride = 1, int Phase = 0, long Origin = 0)
{
    public void Validate()
    {
        if (GlobalBatch < 1 || Begin < 0 || End <= Begin || End > GlobalBatch)
            throw new ArgumentException($"data slice [{Begin}, {End}) of {GlobalBatch} is invalid: need 0 <= begin < end <= global batch.");
        if (Stride < 1 || Phase < 0 || Phase >= Stride || Origin < 0)
            throw new ArgumentException($"data slice stride {Stride}, phase {Phase}, origin {Origin} is invalid: need stride >= 1, 0 <= phase < stride, origin >= 0.");
    }

    /// <summary>Which global batch the sample with run-wide number <paramref name="global"/> belongs to (-1 before the origin).</summary>
    public long GroupOf(long global) => global < Origin ? -1 : (global - Origin) / GlobalBatch;

    public bool Contains(long global)
    {
        long group = GroupOf(global);
        if (group < 0 || group % Stride != Phase) return false;
        long r = (global - Origin) % GlobalBatch;
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
