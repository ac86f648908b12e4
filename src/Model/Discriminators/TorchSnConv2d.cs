using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// Conv2d wrapped in torch.nn.utils.spectral_norm (dim 0, one power iteration per training forward,
/// eps 1e-12). State-dict keys are those PyTorch produces: weight_orig, bias, weight_u, weight_v.
/// Used by the GigaGAN-style discriminator.
/// </summary>
public sealed class TorchSnConv2d : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly Parameter weight_orig;
    private readonly Parameter? bias;
    private readonly Tensor weight_u;
    private readonly Tensor weight_v;
    private readonly long[] _stride;
    private readonly long[] _padding;

    public TorchSnConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long padding = 0, bool bias = true)
        : base(nameof(TorchSnConv2d))
    {
        long fanIn = inChannels * kernelSize * kernelSize;
        weight_orig = LayerInit.Uniform([outChannels, inChannels, kernelSize, kernelSize], fanIn);
        this.bias = bias ? LayerInit.Uniform([outChannels], fanIn) : null;
        weight_u = F.normalize(randn(outChannels), dim: 0, eps: SpectralNorm.Eps);
        weight_v = F.normalize(randn(fanIn), dim: 0, eps: SpectralNorm.Eps);
        _stride = [stride, stride];
        _padding = [padding, padding];
        InChannels = inChannels;
        KernelSize = kernelSize;
        RegisterComponents();
    }

    public long InChannels { get; }

    public long KernelSize { get; }

    /// <summary>The weight the layer applies now (training mode runs a power-iteration step).</summary>
    public Tensor NormalizedWeight() => SpectralNorm.TorchStyle(weight_orig, weight_u, weight_v, training);

    public override Tensor forward(Tensor input)
    {
        using var w = NormalizedWeight();
        return F.conv2d(input, w, bias, _stride, _padding);
    }

    public long CountMacs(Tensor input, Tensor output) => output.numel() * InChannels * KernelSize * KernelSize;
}
