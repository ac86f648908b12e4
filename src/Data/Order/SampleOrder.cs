using System.Security.Cryptography;
using System.Text;
using LiteVae.Data.Randomness;

namespace LiteVae.Data.Order;

/// <summary>One sample of the data set in one epoch: the shard's place in the shard list and the sample's
/// index in that shard (tar order).</summary>
public readonly record struct SampleRef(int Epoch, int Shard, int Index);

/// <summary>What defines the order of a data set (besides its shards): see <see cref="SampleOrder"/>.</summary>
/// <param name="Streams">Shards read side by side, interleaved sample by sample.</param>
/// <param name="ShuffleShards">Permute the shard list every epoch.</param>
/// <param name="ShuffleWindow">Shuffle samples inside windows of this many consecutive samples of a shard (0 or 1: off).</param>
public sealed record OrderSettings(long Seed, int Streams, bool ShuffleShards, int ShuffleWindow)
{
    /// <summary>Every shard once, in list order, each front to back (evaluation).</summary>
    public static readonly OrderSettings InListOrder = new(0, 1, false, 0);

    public void Validate()
    {
        if (Streams < 1) throw new ArgumentException($"streams = {Streams}: must be at least 1.");
        if (ShuffleWindow < 0) throw new ArgumentException($"shuffle-window = {ShuffleWindow}: must be 0 (off) or more.");
    }
}

/// <summary>
/// The one order of a data set, as a pure function of the shards (names and sample counts) and the
/// <see cref="OrderSettings"/>, so that every node, every resume and any number of data nodes or trainer ranks
/// see the same sequence. Samples of the whole run are numbered 0, 1, 2, … across epochs (every epoch holds
/// <see cref="SamplesPerEpoch"/>, bad ones included); <see cref="At"/> says which sample a number is.
/// Epoch e: the shard list is permuted (seed, e); shard ordinal k goes to stream k mod S; streams take turns,
/// one sample each, and a stream that runs out drops out; each shard is read in windows of W consecutive
/// samples, each window permuted (seed, e, k, window start). Reads stay local (S shards, a window at a time)
/// while neighbours in the sequence come from different shards.
/// </summary>
public sealed class SampleOrder
{
    private const long ShardStream = 0x53484152;  // "SHAR"
    private const long WindowStream = 0x57494E44; // "WIND"

    private readonly int[] _sizes;
    private readonly object _lock = new();
    // The epochs computed last (a batch may straddle two): epoch → (shard, index) per position.
    private readonly Dictionary<int, (int[] Shard, int[] Index)> _epochs = new();

    public SampleOrder(IReadOnlyList<string> shardNames, IReadOnlyList<int> shardSizes, OrderSettings settings)
    {
        if (shardNames.Count != shardSizes.Count) throw new ArgumentException("one size per shard");
        settings.Validate();
        _sizes = shardSizes.ToArray();
        Settings = settings;
        SamplesPerEpoch = _sizes.Sum(s => (long)s);
        if (SamplesPerEpoch > int.MaxValue) throw new ArgumentException($"{SamplesPerEpoch} samples per epoch: at most {int.MaxValue} are supported.");
        var text = new StringBuilder();
        for (int i = 0; i < _sizes.Length; i++) text.Append(shardNames[i]).Append('\t').Append(_sizes[i]).Append('\n');
        text.Append(FormattableString.Invariant($"seed={settings.Seed}|streams={settings.Streams}|shuffle-shards={settings.ShuffleShards}|window={Math.Max(1, settings.ShuffleWindow)}"));
        Fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16];
    }

    public OrderSettings Settings { get; }
    public long SamplesPerEpoch { get; }
    public IReadOnlyList<int> ShardSizes => _sizes;
    /// <summary>A hash of everything that defines the order: a saved data position only fits the same value.</summary>
    public string Fingerprint { get; }

    /// <summary>The sample with run-wide number <paramref name="number"/>.</summary>
    public SampleRef At(long number)
    {
        if (SamplesPerEpoch == 0) throw new InvalidOperationException("the data set has no samples.");
        ArgumentOutOfRangeException.ThrowIfNegative(number);
        int epoch = checked((int)(number / SamplesPerEpoch));
        int position = (int)(number % SamplesPerEpoch);
        var (shard, index) = Epoch(epoch);
        return new SampleRef(epoch, shard[position], index[position]);
    }

    /// <summary>Where <paramref name="number"/> sits in its epoch (the augmentation key uses it).</summary>
    public long PositionInEpoch(long number) => number % SamplesPerEpoch;

    private (int[] Shard, int[] Index) Epoch(int epoch)
    {
        lock (_lock)
        {
            if (_epochs.TryGetValue(epoch, out var known)) return known;
            var computed = Compute(epoch);
            if (_epochs.Count >= 2) _epochs.Remove(_epochs.Keys.Min());
            _epochs[epoch] = computed;
            return computed;
        }
    }

    private (int[] Shard, int[] Index) Compute(int epoch)
    {
        var s = Settings;
        int[] shardOrder = ShardPermutation(_sizes.Length, s.Seed, epoch, s.ShuffleShards);
        int streams = s.Streams, window = Math.Max(1, s.ShuffleWindow);
        // Each stream's own sequence, then the streams interleaved one sample at a time.
        var perStream = new List<(int Shard, int Index)>[streams];
        for (int st = 0; st < streams; st++)
        {
            var list = perStream[st] = [];
            for (int k = st; k < shardOrder.Length; k += streams)
            {
                int shard = shardOrder[k], size = _sizes[shard];
                for (int start = 0; start < size; start += window)
                {
                    int n = Math.Min(window, size - start);
                    int[]? perm = window > 1 ? WindowPermutation(n, s.Seed, epoch, k, start) : null;
                    for (int i = 0; i < n; i++) list.Add((shard, start + (perm?[i] ?? i)));
                }
            }
        }
        int total = (int)SamplesPerEpoch;
        var shards = new int[total];
        var indices = new int[total];
        var cursor = new int[streams];
        int at = 0;
        while (at < total)
            for (int st = 0; st < streams; st++)
            {
                if (cursor[st] >= perStream[st].Count) continue;
                (shards[at], indices[at]) = perStream[st][cursor[st]++];
                at++;
            }
        return (shards, indices);
    }

    /// <summary>The shard order of an epoch: a permutation of [0, count) keyed by (seed, epoch), or identity.</summary>
    public static int[] ShardPermutation(int count, long seed, int epoch, bool shuffle)
    {
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffle)
        {
            var rng = DeterministicRandom.Create(seed, epoch, ShardStream);
            rng.Shuffle(order.AsSpan());
        }
        return order;
    }

    /// <summary>The order inside one shuffle window of <paramref name="size"/> samples.</summary>
    public static int[] WindowPermutation(int size, long seed, int epoch, int shardOrdinal, long windowStart)
    {
        var order = Enumerable.Range(0, size).ToArray();
        var rng = DeterministicRandom.Create(seed, epoch, ((long)shardOrdinal << 40) ^ windowStart, WindowStream);
        rng.Shuffle(order.AsSpan());
        return order;
    }
}
