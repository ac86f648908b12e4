namespace LiteVae.Model.Evaluation;

/// <summary>One original with its reconstruction, as planar 3 x H x W bytes, and where it came from.</summary>
public sealed record ImagePair(long Index, string Key, byte[] Original, byte[] Reconstruction, double Score);

/// <summary>
/// A bounded set of image pairs kept for a report grid: the first <see cref="Capacity"/> images, or
/// the worst ones by a score (higher = worse). Memory is Capacity x 2 images, however many are seen.
/// </summary>
public sealed class CapturedImages
{
    private readonly List<ImagePair> _pairs = [];
    private readonly bool _keepWorst;

    public CapturedImages(int capacity, bool keepWorst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        _keepWorst = keepWorst;
    }

    public int Capacity { get; }

    /// <summary>First images in order, or worst first (ties: lower index first).</summary>
    public IReadOnlyList<ImagePair> Pairs => _pairs;

    /// <summary>Would a pair with this score be kept? (Lets the caller skip copying pixels.)</summary>
    public bool Wants(double score)
    {
        if (Capacity == 0) return false;
        if (_pairs.Count < Capacity) return true;
        return _keepWorst && score > _pairs[^1].Score;
    }

    public void Offer(ImagePair pair)
    {
        if (!Wants(pair.Score)) return;
        if (!_keepWorst)
        {
            _pairs.Add(pair);
            return;
        }
        // Insert before the first pair that is less bad; equal scores keep arrival (index) order.
        int at = _pairs.FindIndex(p => p.Score < pair.Score);
        if (at < 0) at = _pairs.Count;
        _pairs.Insert(at, pair);
        if (_pairs.Count > Capacity) _pairs.RemoveAt(_pairs.Count - 1);
    }
}
