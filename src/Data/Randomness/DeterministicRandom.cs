namespace LiteVae.Data.Randomness;

/// <summary>
/// A small, platform-independent random generator (xoshiro256** seeded through SplitMix64), so the
/// data order and every augmentation are pure functions of their inputs on every machine and .NET
/// version. <see cref="System.Random"/> is not used: its seeded sequence is an implementation detail.
/// </summary>
public struct DeterministicRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A generator keyed by several integers (e.g. seed, epoch, sample index, purpose).</summary>
    public static DeterministicRandom Create(long a, long b = 0, long c = 0, long d = 0)
    {
        // Hash the key words into one 64-bit state; each word goes through a full SplitMix64 round
        // so that neighbouring keys (index i and i+1) give unrelated streams.
        ulong h = SplitMix64.Mix((ulong)a ^ 0x9E3779B97F4A7C15UL);
        h = SplitMix64.Mix(h ^ (ulong)b);
        h = SplitMix64.Mix(h ^ (ulong)c ^ 0xD1B54A32D192ED03UL);
        h = SplitMix64.Mix(h ^ (ulong)d);
        return FromSeed(h);
    }

    /// <summary>Seeds the four state words from one value with SplitMix64, as the xoshiro authors recommend.</summary>
    public static DeterministicRandom FromSeed(ulong seed)
    {
        var sm = new SplitMix64(seed);
        var r = new DeterministicRandom { _s0 = sm.Next(), _s1 = sm.Next(), _s2 = sm.Next(), _s3 = sm.Next() };
        return r;
    }

    /// <summary>The next 64 random bits (xoshiro256**).</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A uniform integer in [0, bound), without modulo bias (Lemire's method with rejection).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound), bound, "bound must be positive.");
        ulong b = (ulong)bound;
        while (true)
        {
            ulong x = NextUInt64() >> 32;          // 32 random bits
            ulong m = x * b;                        // fits in 64 bits
            ulong low = m & 0xFFFFFFFFUL;
            if (low >= b || low >= (0x1_0000_0000UL - b) % b)
                return (int)(m >> 32);
        }
    }

    /// <summary>A uniform integer in [min, max] (both inclusive).</summary>
    public int NextInclusive(int min, int max) => min + NextInt(max - min + 1);

    /// <summary>Fisher–Yates shuffle of the span in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}

/// <summary>SplitMix64 (Steele, Lea and Flood): a fast 64-bit mixer used for seeding and hashing keys.</summary>
public struct SplitMix64(ulong state)
{
    private ulong _state = state;

    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>The SplitMix64 output function (a bijective 64-bit finaliser).</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
