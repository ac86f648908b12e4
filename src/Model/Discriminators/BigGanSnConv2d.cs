using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// BigGAN's SNConv2d: a conv whose weight is divided by a power-iteration estimate of its top
/// singular value (one iteration per forward, u updated in training only). State-dict keys:
/// weight, bias, u0 (1 x out), sv0 (1; the last estimate, kept for logging).
/// </summary>
public sealed class BigGanSnConv2d : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly Tensor u0;
    private readonly Tensor sv0;
    private readonly long[] _padding;

    public BigGanSnConv2d(long inChannels, long outChannels, long kernelSize, long padding, bool bias = true)
        : base(nameof(BigGanSnConv2d))
    {
        long fanIn = inChannels * kernelSize * kernelSize;
        weight = LayerInit.Uniform([outChannels, inChannels, kernelSize, kernelSize], fanIn);
        this.bias = bias ? LayerInit.Uniform([outChannels], fanIn) : null;
        u0 = randn(1, outChannels);
        sv0 = ones(1);
        _padding = [padding, padding];
        InChannels = inChannels;
        KernelSize = kernelSize;
        RegisterComponents();
    }

    public long InChannels { get; }

    public long KernelSize { get; }

    /// <summary>The raw weight, for initialisation (orthogonal in U-Net GAN).</summary>
    public Parameter Weight => weight;

    public Tensor NormalizedWeight() => SpectralNorm.BigGanStyle(weight, u0, sv0, training);

    public override Tensor forward(Tensor input)
    {
        using var w = NormalizedWeight();
        return F.conv2d(input, w, bias, padding: _padding);
    }

    public long CountMacs(Tensor input, Tensor output) => output.numel() * InChannels * KernelSize * KernelSize;
}
