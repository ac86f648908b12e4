using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Exponential moving average of a flat fp32 weight buffer (spec 8.3, LitEma): after the n-th update
/// (n counted from 1), decay_n = min(decay, (1 + n) / (10 + n)) and shadow ← shadow − (1 − decay_n)
/// (shadow − weights). One kernel per update. The shadow starts as a copy of the weights.
/// </summary>
public sealed class Ema : IDisposable
{
    private readonly Tensor _source;

    public Ema(Tensor source, double decay = 0.9999, bool warmup = true)
    {
        if (decay is < 0 or > 1)
            throw new ArgumentException($"EMA decay must be in [0, 1], got {decay}.");
        _source = source;
        Decay = decay;
        Warmup = warmup;
        using (no_grad())
            Shadow = source.detach().clone().DetachFromDisposeScope();
    }

    public double Decay { get; }
    public bool Warmup { get; }

    /// <summary>The averaged weights, laid out like the source buffer.</summary>
    public Tensor Shadow { get; }

    /// <summary>Updates applied so far (part of the trainer state; restore it on resume).</summary>
    public long Updates { get; set; }

    /// <summary>The decay the n-th update uses.</summary>
    public double DecayAt(long n) => Warmup ? Math.Min(Decay, (1.0 + n) / (10.0 + n)) : Decay;

    public void Update()
    {
        Updates++;
        using (no_grad())
            Shadow.lerp_(_source, 1.0 - DecayAt(Updates));
    }

    public void Dispose() => Shadow.Dispose();
}
