using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Decoder;

/// <summary>
/// Self-modulated convolution (spec 4): a conv whose weight is rescaled per input channel by learned
/// scales, demodulated per output filter and multiplied by a learned gain, recomputed every call.
/// State: conv.weight, conv.bias, scales [Ci] (init 1), gain [1] (init 1). Stride is always 1 and
/// padding k/2, as in the reference.
/// </summary>
public sealed class SelfModulatedConv2d : nn.Module<Tensor, Tensor>, IMacCounted
{
    private const double DemodEps = 1e-8;

    // The conv module only holds weight and bias (reference key names); it is never called itself.
    private readonly Conv2d conv;
    private readonly Parameter gain;
    private readonly Parameter scales;

    private readonly long _padding;

    public SelfModulatedConv2d(long inChannels, long outChannels, long kernelSize = 3, bool bias = true) : base(nameof(SelfModulatedConv2d))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, padding: kernelSize / 2, bias: bias);
        gain = nn.Parameter(ones(1));
        scales = nn.Parameter(ones(inChannels));
        _padding = kernelSize / 2;
        RegisterComponents();
    }

    public Parameter Weight => conv.weight!;

    /// <summary>The effective weight of spec 4.2 steps 1-5 (autograd flows to weight, scales, gain).</summary>
    public Tensor ModulatedWeight()
    {
        using var scope = NewDisposeScope();
        var w = conv.weight!;                                   // [Co, Ci, k, k]
        long co = w.shape[0], ci = w.shape[1], taps = w.shape[2] * w.shape[3];
        // Every step only rescales whole (o, i) kernel slices, so the steps are computed on the
        // per-slice energies q[o,i] = sum_k w[o,i,k]^2 and folded into one [Co, Ci] factor: the
        // full-size weight is read twice (q and the final multiply) instead of six times.
        var q = (w * w).sum([2, 3]);                            // [Co, Ci]
        // 1. w1 = w / sqrt(mean_(i,k) w^2)   (no epsilon)
        var wScale = (q.sum(1, keepdim: true) / (double)(ci * taps)).rsqrt();          // [Co, 1]
        // 2. s1 = s / sqrt(mean_i s^2)        (no epsilon)
        var s1 = scales * (scales * scales).mean().rsqrt();                          // [Ci]
        // 3. w2 = w1 * s1[i] = w * m[o,i]
        var m = wScale * s1.unsqueeze(0);                                            // [Co, Ci]
        // 4. w3 = w2 / sqrt(sum_(i,k) w2^2 + 1e-8), with sum_(i,k) w2^2 = sum_i m^2 q
        var demod = ((q * m * m).sum(1, keepdim: true) + DemodEps).rsqrt();        // [Co, 1]
        // 5. w4 = gain * w3
        var factor = m * demod * gain;                                               // [Co, Ci]
        return scope.MoveToOuter(w * factor.view(co, ci, 1, 1));
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.conv2d(x, ModulatedWeight(), conv.bias, padding: [_padding, _padding]);
        return scope.MoveToOuter(y);
    }

    public long CountMacs(Tensor input, Tensor output) =>
        output.numel() * conv.weight!.shape[1] * conv.weight.shape[2] * conv.weight.shape[3];
}
