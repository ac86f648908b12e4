using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>BigGAN's SNLinear (see <see cref="BigGanSnConv2d"/>): keys weight, bias, u0, sv0.</summary>
public sealed class BigGanSnLinear : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly Tensor u0;
    private readonly Tensor sv0;

    public BigGanSnLinear(long inFeatures, long outFeatures) : base(nameof(BigGanSnLinear))
    {
        weight = LayerInit.Uniform([outFeatures, inFeatures], inFeatures);
        bias = LayerInit.Uniform([outFeatures], inFeatures);
        u0 = randn(1, outFeatures);
        sv0 = ones(1);
        InFeatures = inFeatures;
        RegisterComponents();
    }

    public long InFeatures { get; }

    public Parameter Weight => weight;

    public Tensor NormalizedWeight() => SpectralNorm.BigGanStyle(weight, u0, sv0, training);

    public override Tensor forward(Tensor input)
    {
        using var w = NormalizedWeight();
        return F.linear(input, w, bias);
    }

    public long CountMacs(Tensor input, Tensor output) => output.numel() * InFeatures;
}
