using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Training precision. TorchSharp has no autocast, so mixed precision is built here: the module runs
/// in the low-precision dtype, an fp32 master copy of the weights takes the optimizer updates.
/// </summary>
public enum Precision
{
    /// <summary>Everything fp32 (TF32 convolutions on GPUs that have them).</summary>
    Fp32,
    /// <summary>bf16 compute (weights and activations), fp32 master weights and optimizer state.</summary>
    Bf16,
    /// <summary>fp16 compute with dynamic loss scaling, fp32 master weights and optimizer state.</summary>
    Fp16,
}

public static class PrecisionNames
{
    public static ScalarType ComputeType(this Precision p) => p switch
    {
        Precision.Bf16 => ScalarType.BFloat16,
        Precision.Fp16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>The config / run-directory spelling: fp32, bf16, fp16.</summary>
    public static string Name(this Precision p) => p.ToString().ToLowerInvariant();

    public static Precision Parse(string s) => s switch
    {
        "fp32" => Precision.Fp32,
        "bf16" => Precision.Bf16,
        "fp16" => Precision.Fp16,
        _ => throw new ArgumentException($"unknown precision '{s}': use fp32, bf16 or fp16."),
    };
}

/// <summary>
/// The fp32 master weights of one module and the flat buffers its compute copy lives in.
///
/// fp32: the module's own flat buffers are the master (no copies at all).
/// bf16/fp16: the module is converted to the compute dtype and flattened; the fp32 master and its
/// fp32 gradient are separate flat buffers with the SAME element arrangement, so
/// <see cref="GatherGrads"/> (compute grads → fp32, once per step) and <see cref="PublishWeights"/>
/// (fp32 master → compute weights, once per optimizer step) are one kernel each.
/// </summary>
public sealed class MasterWeights : IDisposable
{
    private readonly FlatParameters _compute;
    private readonly FlatParameters? _fp32Layout; // bf16/fp16: owns the master buffers

    private MasterWeights(Precision precision, FlatParameters compute, FlatParameters? fp32Layout)
    {
        Precision = precision;
        _compute = compute;
        _fp32Layout = fp32Layout;
    }

    public Precision Precision { get; }

    /// <summary>fp32 flat weights (what the optimizer updates and checkpoints save).</summary>
    public Tensor Params => (_fp32Layout ?? _compute).Single.Data;

    /// <summary>fp32 flat gradient (filled by backward in fp32 mode, by <see cref="GatherGrads"/> otherwise).</summary>
    public Tensor Grads => (_fp32Layout ?? _compute).Single.Grad;

    /// <summary>The compute copy's flat group (module dtype).</summary>
    public FlatGroup Compute => _compute.Single;

    /// <summary>Name, offset and layout of every trainable parameter (same for master and compute).</summary>
    public IReadOnlyList<FlatSlot> Slots => _compute.Single.Slots;

    public bool HasSeparateMaster => _fp32Layout is not null;

    /// <summary>
    /// Flattens the trainable parameters of <paramref name="module"/> (already on its device, fp32,
    /// weights loaded) and, for bf16/fp16, converts the module to the compute dtype. After this call
    /// do not move or convert the module again.
    /// </summary>
    public static MasterWeights Create(nn.Module module, Precision precision, bool channelsLast = false) =>
        Create(module, precision, _ => channelsLast);

    /// <summary>As above, with channels-last strides for the parameters <paramref name="channelsLast"/> names.</summary>
    public static MasterWeights Create(nn.Module module, Precision precision, Func<string, bool> channelsLast)
    {
        var trainable = module.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        foreach (var (name, p) in trainable)
            if (p.dtype != ScalarType.Float32)
                throw new ArgumentException($"parameter '{name}' is {p.dtype}: build and load the module in fp32; the precision setting converts it.");

        var fp32 = FlatParameters.Create(module.named_parameters(), channelsLast);
        if (precision == Precision.Fp32)
            return new MasterWeights(precision, fp32, null);

        // The fp32 flat buffer becomes the master. Converting the module replaces its Parameter
        // objects, so the master keeps the exact fp32 values and nothing else writes to it.
        module.to(precision.ComputeType());
        var compute = FlatParameters.Create(module.named_parameters(), channelsLast);
        var a = fp32.Single.Slots;
        var b = compute.Single.Slots;
        if (a.Count != b.Count || a.Zip(b).Any(t => t.First.Name != t.Second.Name || t.First.Offset != t.Second.Offset))
            throw new InvalidOperationException("the compute copy's parameter layout differs from the master's.");
        return new MasterWeights(precision, compute, fp32);
    }

    /// <summary>Zeroes the gradients that backward accumulates into (the compute copy's).</summary>
    public void ZeroGrad() => _compute.ZeroGrad();

    /// <summary>Compute-dtype gradients → fp32 master gradients (one upcast copy); no-op in fp32.</summary>
    public void GatherGrads()
    {
        if (_fp32Layout is not null)
            _fp32Layout.Single.Grad.copy_(_compute.Single.Grad);
    }

    /// <summary>fp32 master → compute weights (one downcast copy); no-op in fp32.</summary>
    public void PublishWeights()
    {
        if (_fp32Layout is not null)
            using (no_grad())
                _compute.Single.Data.copy_(_fp32Layout.Single.Data);
    }

    /// <summary>A view of one parameter inside a flat buffer laid out like <see cref="Params"/>.</summary>
    public static Tensor SlotView(Tensor flat, FlatSlot slot) => flat.as_strided(slot.Shape, slot.Strides, slot.Offset);

    public void Dispose()
    {
        _compute.Dispose();
        _fp32Layout?.Dispose();
    }
}

/// <summary>
/// Dynamic loss scaling for fp16, entirely on the device: the loss is multiplied by the scale before
/// backward, gradients are divided by it after; an overflow (non-finite gradients) halves the scale
/// and the step is skipped by the guard; <see cref="GrowthInterval"/> good steps in a row double it.
/// </summary>
public sealed class DynamicLossScale : IDisposable
{
    private readonly Tensor _scale;
    private readonly Tensor _goodSteps;

    public DynamicLossScale(Device device, double initialScale = 65536.0, long growthInterval = 2000)
    {
        _scale = full([], initialScale, ScalarType.Float32, device).DetachFromDisposeScope();
        _goodSteps = zeros([], ScalarType.Float32, device).DetachFromDisposeScope();
        GrowthInterval = growthInterval;
    }

    public long GrowthInterval { get; }
    public Tensor Scale => _scale;

    public Tensor ScaleLoss(Tensor loss) => loss * _scale.to_type(loss.dtype);

    /// <summary>Divides fp32 gradients by the scale in place.</summary>
    public void Unscale(Tensor grads) => grads.div_(_scale);

    /// <summary>Adjusts the scale after a step; <paramref name="ok"/> is the guard's 0/1 flag.</summary>
    public void Update(Tensor ok)
    {
        using var scope = NewDisposeScope();
        var good = (_goodSteps + 1).mul_(ok);                 // reset on overflow
        var grow = good.ge(GrowthInterval).to_type(ScalarType.Float32);
        var factor = ok * (1.0 + grow) + (1 - ok) * 0.5;      // x2 after a good run, /2 on overflow
        _scale.mul_(factor).clamp_(1.0, 16777216.0);
        _goodSteps.copy_(good.mul_(1 - grow));
    }

    public IReadOnlyDictionary<string, Tensor> State() => new Dictionary<string, Tensor>
    {
        ["loss_scale"] = _scale,
        ["loss_scale_good_steps"] = _goodSteps,
    };

    public void Dispose()
    {
        _scale.Dispose();
        _goodSteps.Dispose();
    }
}
