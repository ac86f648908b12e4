using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Deterministic randomness for exact resume. Every random draw of a training step comes from a
/// generator re-seeded with <see cref="Derive"/>(run seed, step, purpose), so the draws of step k do
/// not depend on anything that happened before step k. A resumed run therefore needs no saved RNG
/// state beyond the step counter and the seed, and a run stopped at k and resumed gives the same
/// numbers as one that never stopped. Purposes keep independent streams apart (posterior noise vs
/// anything else), and micro-batches use distinct purposes ("posterior/0", "posterior/1", …).
/// </summary>
public sealed class StepRandom : IDisposable
{
    private readonly Generator? _generator;
    private readonly bool _cuda;

    public StepRandom(long seed, Device device)
    {
        Seed = seed;
        _cuda = device.type == DeviceType.CUDA;
        // TorchSharp 0.107 can only create CPU generators (THSGenerator_new ignores the device), and
        // drawing on the CPU then copying would be a blocking transfer every step. On a GPU the
        // default CUDA generator is re-seeded instead (a host-side call, no sync).
        if (!_cuda)
            _generator = new Generator((ulong)Derive(seed, -1, "init"), device);
    }

    public long Seed { get; }

    /// <summary>
    /// The generator for (step, purpose), freshly seeded; valid until the next call. On a GPU this
    /// re-seeds torch's default CUDA generator and returns null (draw with the default generator).
    /// </summary>
    public Generator? For(long step, string purpose)
    {
        long seed = Derive(Seed, step, purpose);
        if (_cuda)
        {
            cuda.manual_seed_all(seed);
            return null;
        }
        _generator!.manual_seed(seed);
        return _generator;
    }

    /// <summary>A 63-bit seed mixed from the run seed, the step and a purpose string (SplitMix64 rounds).</summary>
    public static long Derive(long seed, long step, string purpose)
    {
        ulong h = Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ (ulong)step);
        foreach (char c in purpose)
            h = Mix(h ^ c);
        return (long)(h >> 1);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public void Dispose() => _generator?.Dispose();
}
