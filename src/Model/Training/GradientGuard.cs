using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>What the guard found in one step's gradients, still on the device.</summary>
/// <param name="Norm">Global L2 norm of the gradient before clipping (0-dim fp32; NaN/Inf if bad).</param>
/// <param name="Ok">0-dim fp32: 1 when every gradient entry is finite, else 0.</param>
public sealed record GradientCheck(Tensor Norm, Tensor Ok);

/// <summary>
/// The NaN/Inf guard and global-norm clipping on a flat fp32 gradient buffer. Both come from one
/// reduction (the global norm is non-finite exactly when some entry is), and the result stays on the
/// device: the optimizer skips a bad step through the 0/1 flag, so there is no per-step host sync.
/// The host learns about skipped steps once per log window through <see cref="SkippedStepLog"/>.
/// </summary>
public static class GradientGuard
{
    /// <param name="grads">Flat fp32 gradient; clipped in place when <paramref name="clipNorm"/> is set.</param>
    /// <param name="clipNorm">Maximum global L2 norm, or null for no clipping.</param>
    public static GradientCheck Check(Tensor grads, double? clipNorm)
    {
        using var _ = no_grad();
        var norm = grads.norm();
        var ok = norm.isfinite().to_type(ScalarType.Float32);
        if (clipNorm is double max)
        {
            if (!(max > 0))
                throw new ArgumentException($"gradient clip norm must be positive, got {max}.");
            // torch.nn.utils.clip_grad_norm_'s rule: scale by max / (norm + 1e-6) when that is < 1.
            using var coef = (max / (norm + 1e-6)).clamp_max_(1.0).nan_to_num_(0.0, 0.0, 0.0);
            grads.mul_(coef);
        }
        return new GradientCheck(norm, ok);
    }
}

/// <summary>
/// Host-side record of skipped steps, fed with device flags and read once per log window (one sync).
/// Fails with a clear message after <see cref="MaxConsecutive"/> bad steps in a row.
/// </summary>
public sealed class SkippedStepLog : IDisposable
{
    private readonly List<(long step, Tensor ok)> _pending = [];

    public SkippedStepLog(int maxConsecutive) =>
        MaxConsecutive = maxConsecutive > 0 ? maxConsecutive : throw new ArgumentException("max consecutive bad steps must be at least 1.");

    public int MaxConsecutive { get; }
    public long TotalSkipped { get; set; }
    public int Consecutive { get; set; }

    /// <summary>Remembers the flag of <paramref name="step"/> (the tensor is kept until the next flush).</summary>
    public void Add(long step, Tensor ok) => _pending.Add((step, ok.detach().DetachFromDisposeScope()));

    /// <summary>
    /// Reads the pending flags (one device→host copy) and returns the steps that were skipped in this
    /// window. Throws when the run of consecutive bad steps reaches the limit.
    /// </summary>
    public IReadOnlyList<long> Flush()
    {
        if (_pending.Count == 0) return [];
        float[] flags;
        using (var scope = NewDisposeScope())
            flags = stack(_pending.Select(p => p.ok).ToArray()).cpu().data<float>().ToArray();
        var skipped = new List<long>();
        for (int i = 0; i < flags.Length; i++)
        {
            if (flags[i] > 0.5f)
            {
                Consecutive = 0;
                continue;
            }
            skipped.Add(_pending[i].step);
            TotalSkipped++;
            Consecutive++;
            if (Consecutive >= MaxConsecutive)
            {
                long step = _pending[i].step;
                Clear();
                throw new NonFiniteGradientException(
                    $"step {step}: {MaxConsecutive} consecutive steps had NaN/Inf gradients and were skipped; stopping. " +
                    "Lower the learning rate, check the data, or use fp32; the last checkpoint is intact. " +
                    "(trainer.max-consecutive-bad-steps sets the limit.)", step);
            }
        }
        Clear();
        return skipped;
    }

    private void Clear()
    {
        foreach (var (_, t) in _pending) t.Dispose();
        _pending.Clear();
    }

    public void Dispose() => Clear();
}

public sealed class NonFiniteGradientException(string message, long step) : Exception(message)
{
    public long Step { get; } = step;
}
