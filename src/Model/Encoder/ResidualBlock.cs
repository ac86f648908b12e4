using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Encoder;

/// <summary>
/// The reference encoder's post-norm residual block (spec 3.2):
/// out = SiLU(GN(conv2(SiLU(GN(conv1(x)))))) + residual(x), with 3x3 convs, GroupNorm of 8 groups
/// (eps 1e-5) and a 1x1 residual_conv only where the widths differ.
/// </summary>
public sealed class ResidualBlock : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d? residual_conv;
    private readonly Conv2d conv1;
    private readonly GroupNorm norm1;
    private readonly Conv2d conv2;
    private readonly GroupNorm norm2;

    public ResidualBlock(long inChannels, long outChannels, int groups = Configs.EncoderConfig.NormGroups) : base(nameof(ResidualBlock))
    {
        residual_conv = inChannels != outChannels ? nn.Conv2d(inChannels, outChannels, 1) : null;
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        norm1 = Norms.GroupNorm(groups, outChannels);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        norm2 = Norms.GroupNorm(groups, outChannels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Activations.SiluOwned(norm1.call(conv1.call(x)));
        h = Activations.SiluOwned(norm2.call(conv2.call(h)));
        // h is this block's own tensor, and add's backward needs neither operand: in place is safe.
        h.add_(residual_conv is null ? x : residual_conv.call(x));
        return scope.MoveToOuter(h);
    }
}
