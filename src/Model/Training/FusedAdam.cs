using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>Adam hyper-parameters. Defaults are the LiteVAE recipe (spec 9.2): lr 1e-4, betas (0.5, 0.9).</summary>
public sealed record AdamOptions(double Lr = 1e-4, double Beta1 = 0.5, double Beta2 = 0.9, double Eps = 1e-8)
{
    public void Validate()
    {
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentException($"Adam lr must be positive, got {Lr}.");
        if (Beta1 is < 0 or >= 1) throw new ArgumentException($"Adam beta1 must be in [0, 1), got {Beta1}.");
        if (Beta2 is < 0 or >= 1) throw new ArgumentException($"Adam beta2 must be in [0, 1), got {Beta2}.");
        if (!(Eps > 0)) throw new ArgumentException($"Adam eps must be positive, got {Eps}.");
    }
}

/// <summary>
/// Adam (no weight decay, bias-corrected, torch.optim.Adam's formula) over ONE flat fp32 parameter
/// buffer and its flat gradient: about ten kernels per step whatever the number of parameters.
///
/// The step can be skipped on the device: <see cref="Step"/> takes a 0-dim 0/1 tensor (1 = apply). A
/// skipped step leaves the weights, both moments and the step count untouched, without the host ever
/// reading the flag, so the NaN/Inf guard costs no GPU→CPU synchronisation. Non-finite gradient
/// entries are zeroed first so that a skipped step cannot leak NaN into the moments (0 × NaN = NaN).
/// </summary>
public sealed class FusedAdam : IDisposable
{
    private readonly Tensor _param;
    private readonly Tensor _grad;
    private readonly Tensor _expAvg;
    private readonly Tensor _expAvgSq;
    private readonly Tensor _step;   // float64 0-dim: number of applied steps
    private readonly Tensor _one;    // float32 0-dim 1.0, the "always apply" flag

    public FusedAdam(Tensor param, Tensor grad, AdamOptions options)
    {
        options.Validate();
        if (param.dim() != 1 || grad.dim() != 1 || param.numel() != grad.numel())
            throw new ArgumentException("FusedAdam needs a 1-D flat parameter buffer and a gradient buffer of the same length.");
        if (param.dtype != ScalarType.Float32 || grad.dtype != ScalarType.Float32)
            throw new ArgumentException($"FusedAdam keeps fp32 state: parameters are {param.dtype}, gradients {grad.dtype} (use fp32 master weights).");
        Options = options;
        _param = param;
        _grad = grad;
        _expAvg = zeros_like(param).DetachFromDisposeScope();
        _expAvgSq = zeros_like(param).DetachFromDisposeScope();
        _step = zeros([], ScalarType.Float64, param.device).DetachFromDisposeScope();
        _one = ones([], ScalarType.Float32, param.device).DetachFromDisposeScope();
    }

    public AdamOptions Options { get; set; }

    public Tensor ExpAvg => _expAvg;
    public Tensor ExpAvgSq => _expAvgSq;

    /// <summary>Applied steps, as a device scalar (reading it synchronises; do it once per log window).</summary>
    public Tensor StepCount => _step;

    /// <summary>One Adam update of the parameter buffer from the gradient buffer.</summary>
    /// <param name="apply">0-dim float32 tensor on the parameters' device: 1 applies the step, 0 skips
    /// it; null always applies.</param>
    public void Step(Tensor? apply = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var o = Options;
        var ok = apply ?? _one;
        if (ok.dtype != ScalarType.Float32) ok = ok.to_type(ScalarType.Float32);

        _grad.nan_to_num_(0.0, 0.0, 0.0);
        _step.add_(ok);
        var step = _step.clamp_min(1.0); // a skipped first step must not divide by 1 - beta^0 = 0

        // m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2   (weights are 0 when skipped)
        _expAvg.lerp_(_grad, ok * (float)(1 - o.Beta1));
        _expAvgSq.lerp_(_grad.square(), ok * (float)(1 - o.Beta2));

        // beta^t as exp(t ln beta): no host scalar has to travel to the device.
        var biasCorrection1 = 1.0 - (step * Math.Log(o.Beta1)).exp_();
        var biasCorrection2Sqrt = (1.0 - (step * Math.Log(o.Beta2)).exp_()).sqrt_();
        var stepSize = (ok.to_type(ScalarType.Float64) * -o.Lr / biasCorrection1).to_type(ScalarType.Float32);

        // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), as torch.optim.Adam computes it.
        var denom = _expAvgSq.sqrt().div_(biasCorrection2Sqrt.to_type(ScalarType.Float32)).add_(o.Eps);
        _param.add_(_expAvg.div(denom).mul_(stepSize));
    }

    /// <summary>The state as flat tensors (views of the live state; copy before keeping them).</summary>
    public IReadOnlyDictionary<string, Tensor> State() => new Dictionary<string, Tensor>
    {
        ["exp_avg"] = _expAvg,
        ["exp_avg_sq"] = _expAvgSq,
        ["step"] = _step,
    };

    /// <summary>Copies a state saved by <see cref="State"/> back (same flat arrangement).</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        using var _ = no_grad();
        foreach (var (key, dst) in State())
        {
            if (!state.TryGetValue(key, out var src))
                throw new InvalidDataException($"{source}: optimizer state has no '{key}'.");
            if (!src.shape.SequenceEqual(dst.shape))
                throw new InvalidDataException($"{source}: optimizer state '{key}' has shape [{string.Join(", ", src.shape)}], expected [{string.Join(", ", dst.shape)}].");
            dst.copy_(src);
        }
    }

    public void Dispose()
    {
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        _step.Dispose();
        _one.Dispose();
    }
}
