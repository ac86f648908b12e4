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
        var w = conv.weight!;
        // 1. per-filter RMS pre-normalisation; 2. RMS-normalised scales (no epsilon in either).
        var wRms = w.square().mean([1, 2, 3], keepdim: true).rsqrt();              // [Co,1,1,1]
        var s = scales * scales.square().mean().rsqrt();                            // [Ci]
        // 3. modulate: one full-size multiply by the (Co x Ci) outer product of the two factors.
        var w2 = w * (wRms * s.view(1, -1, 1, 1));
        // 4. demodulate per output filter; 5. input gain (a scalar, so it folds into the same factor).
        var demod = (w2.square().sum([1, 2, 3], keepdim: true) + DemodEps).rsqrt() * gain;
        return scope.MoveToOuter(w2 * demod);
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
