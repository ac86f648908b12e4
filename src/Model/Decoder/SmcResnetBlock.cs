using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Decoder;

/// <summary>
/// The reference decoder block (spec 5.2), post-activation:
/// out = shortcut(x) + SiLU(SMC2(Dropout(SiLU(SMC1(x))))), shortcut = 1x1 nin_shortcut where the widths differ.
/// </summary>
public sealed class SmcResnetBlock : nn.Module<Tensor, Tensor>
{
    private readonly SelfModulatedConv2d conv1;
    private readonly Dropout? dropout;
    private readonly SelfModulatedConv2d conv2;
    private readonly Conv2d? nin_shortcut;

    public SmcResnetBlock(long inChannels, long outChannels, double dropoutRate = 0.0) : base(nameof(SmcResnetBlock))
    {
        conv1 = new SelfModulatedConv2d(inChannels, outChannels, 3);
        dropout = dropoutRate > 0 ? nn.Dropout(dropoutRate) : null;
        conv2 = new SelfModulatedConv2d(outChannels, outChannels, 3);
        nin_shortcut = inChannels != outChannels ? nn.Conv2d(inChannels, outChannels, 1) : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Activations.SiluOwned(conv1.call(x));
        if (dropout is not null) h = dropout.call(h);
        h = Activations.SiluOwned(conv2.call(h));
        h.add_(nin_shortcut is null ? x : nin_shortcut.call(x));
        return scope.MoveToOuter(h);
    }
}
