using LiteVae.Data.Randomness;

namespace LiteVae.Data.Pipeline;

/// <summary>The random parts of the data order, each a pure function of its key.</summary>
public static class EpochOrder
{
    private const long ShardStream = 0x53484152;  // "SHAR"
    private const long WindowStream = 0x57494E44; // "WIND"

    /// <summary>The shard order of an epoch: a permutation of [0, count) keyed by (seed, epoch), or identity.</summary>
    public static int[] Shards(int count, long seed, int epoch, bool shuffle)
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
    public static int[] Window(int size, long seed, int epoch, int shardOrdinal, long windowStart)
    {
        var order = Enumerable.Range(0, size).ToArray();
        var rng = DeterministicRandom.Create(seed, epoch, ((long)shardOrdinal << 40) ^ windowStart, WindowStream);
        rng.Shuffle(order.AsSpan());
        return order;
    }
}
