namespace LiteVae.Model.Evaluation;

/// <summary>
/// How far an evaluation is: images done, the expected total (exact, or estimated from the shards read
/// so far, or unknown), elapsed time, rate and time left.
/// </summary>
public sealed record EvalProgress(long Images, long? Total, bool TotalIsEstimate, TimeSpan Elapsed)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Images / Elapsed.TotalSeconds : 0;

    /// <summary>Time left at the rate so far; null while the total or the rate is unknown.</summary>
    public TimeSpan? Remaining =>
        Total is long t && Images > 0 && ImagesPerSecond > 0
            ? TimeSpan.FromSeconds(Math.Max(0, t - Images) / ImagesPerSecond)
            : null;

    public string Describe()
    {
        string count = Total is long t
            ? $"{Images}/{(TotalIsEstimate ? "~" : "")}{t} images ({100.0 * Images / Math.Max(1, t):0}%)"
            : $"{Images} images";
        string eta = Remaining is { } r ? $", ETA {Format(r)}" : "";
        return FormattableString.Invariant($"eval {count}, {ImagesPerSecond:0.0} img/s, {Format(Elapsed)} elapsed{eta}");
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:00}s"
        : FormattableString.Invariant($"{t.TotalSeconds:0.0}s");
}

/// <summary>
/// Estimates an evaluation's total image count while it runs: an exact count when it is known up front
/// (a folder of images, or --limit below it), otherwise images per finished shard times the shard count
/// (shards are read one after another, in order, during evaluation).
/// </summary>
public sealed class EvalTotalEstimator
{
    private readonly long? _exact;
    private readonly long? _limit;
    private readonly int _shards;
    private string? _currentShard;
    private long _inCurrent;
    private long _inFinished;
    private int _finished;

    /// <param name="exactCount">The number of samples when known without reading (folders); null for tar shards.</param>
    /// <param name="limit">At most this many images are evaluated (--limit).</param>
    /// <param name="shards">How many shards the data set has.</param>
    public EvalTotalEstimator(long? exactCount, long? limit, int shards)
    {
        _exact = exactCount;
        _limit = limit;
        _shards = Math.Max(1, shards);
    }

    /// <summary>Counts one evaluated image of <paramref name="shard"/>.</summary>
    public void Saw(string shard)
    {
        if (shard != _currentShard)
        {
            if (_currentShard is not null)
            {
                _finished++;
                _inFinished += _inCurrent;
            }
            _currentShard = shard;
            _inCurrent = 0;
        }
        _inCurrent++;
    }

    /// <summary>The expected total and whether it is an estimate; null while nothing is known.</summary>
    public (long? Total, bool Estimate) Total()
    {
        long? total = _exact;
        bool estimate = false;
        if (total is null && _finished > 0)
        {
            // Shards not finished yet are assumed to be as large as the finished ones on average.
            long seen = _inFinished + _inCurrent;
            total = Math.Max(seen, (long)Math.Round((double)_inFinished / _finished * _shards));
            estimate = true;
        }
        if (_limit is long l && (total is null || l <= total))
            return (l, false);
        return (total, estimate);
    }
}
