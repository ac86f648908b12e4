using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// BigGAN's "wide" discriminator block with 2x average-pool downsampling:
/// h = conv2(relu(conv1(pre(x)))) pooled, plus a 1x1 shortcut. Without pre-activation (the first
/// block, which sees the image) the shortcut pools before its conv; otherwise it pools after.
/// </summary>
public sealed class DBlock : nn.Module<Tensor, Tensor>
{
    private readonly BigGanSnConv2d conv1;
    private readonly BigGanSnConv2d conv2;
    private readonly BigGanSnConv2d conv_sc;
    private readonly bool _preactivation;

    public DBlock(long inChannels, long outChannels, bool preactivation) : base(nameof(DBlock))
    {
        conv1 = new BigGanSnConv2d(inChannels, outChannels, 3, 1);
        conv2 = new BigGanSnConv2d(outChannels, outChannels, 3, 1);
        conv_sc = new BigGanSnConv2d(inChannels, outChannels, 1, 0);
        _preactivation = preactivation;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = _preactivation ? F.relu(x) : x;
        h = conv1.call(h);
        h = conv2.call(F.relu(h));
        h = F.avg_pool2d(h, 2);
        var shortcut = _preactivation
            ? F.avg_pool2d(conv_sc.call(x), 2)
            : conv_sc.call(F.avg_pool2d(x, 2));
        return scope.MoveToOuter(h + shortcut);
    }
}

/// <summary>
/// U-Net GAN's decoder block: h = conv2(relu(conv1(up(relu(x))))), plus conv_sc(up(x)); nearest 2x
/// upsampling, no normalisation.
/// </summary>
public sealed class GBlock2 : nn.Module<Tensor, Tensor>
{
    private readonly BigGanSnConv2d conv1;
    private readonly BigGanSnConv2d conv2;
    private readonly BigGanSnConv2d conv_sc;

    public GBlock2(long inChannels, long outChannels) : base(nameof(GBlock2))
    {
        conv1 = new BigGanSnConv2d(inChannels, outChannels, 3, 1);
        conv2 = new BigGanSnConv2d(outChannels, outChannels, 3, 1);
        conv_sc = new BigGanSnConv2d(inChannels, outChannels, 1, 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Up(F.relu(x));
        var skip = Up(x);
        h = conv1.call(h);
        h = conv2.call(F.relu(h));
        return scope.MoveToOuter(h + conv_sc.call(skip));
    }

    private static Tensor Up(Tensor t) => F.interpolate(t, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
}

/// <summary>
/// SA-GAN non-local block as BigGAN writes it: theta/phi/g/o are bias-free spectral-norm 1x1 convs
/// (C/8, C/8, C/2, C), phi and g are 2x2 max-pooled, output = x + gamma * o(attention), gamma
/// starting at 0. Counts its own MACs, convs included, because the two batched matmuls are not layers.
/// </summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly BigGanSnConv2d theta;
    private readonly BigGanSnConv2d phi;
    private readonly BigGanSnConv2d g;
    private readonly BigGanSnConv2d o;
    private readonly Parameter gamma;
    private readonly long _ch;

    public SelfAttention(long channels) : base(nameof(SelfAttention))
    {
        if (channels % 8 != 0)
            throw new ArgumentException($"self-attention needs a channel count divisible by 8, got {channels}.");
        _ch = channels;
        theta = new BigGanSnConv2d(channels, channels / 8, 1, 0, bias: false);
        phi = new BigGanSnConv2d(channels, channels / 8, 1, 0, bias: false);
        g = new BigGanSnConv2d(channels, channels / 2, 1, 0, bias: false);
        o = new BigGanSnConv2d(channels / 2, channels, 1, 0, bias: false);
        gamma = new Parameter(tensor(0f));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var th = theta.call(x).reshape(n, _ch / 8, h * w);
        var ph = F.max_pool2d(phi.call(x), 2).reshape(n, _ch / 8, -1);
        var gv = F.max_pool2d(g.call(x), 2).reshape(n, _ch / 2, -1);
        var beta = F.softmax(bmm(th.transpose(1, 2), ph), -1);
        var attended = bmm(gv, beta.transpose(1, 2)).reshape(n, _ch / 2, h, w);
        return scope.MoveToOuter(x + gamma * o.call(attended));
    }

    public long CountMacs(Tensor input, Tensor output)
    {
        long n = input.shape[0], hw = input.shape[2] * input.shape[3], pooled = (input.shape[2] / 2) * (input.shape[3] / 2);
        long c = _ch;
        long convs = n * hw * c * (c / 8) * 2 + n * hw * c * (c / 2) + n * hw * (c / 2) * c;
        long matmuls = n * hw * pooled * (c / 8) + n * hw * pooled * (c / 2);
        return convs + matmuls;
    }

    internal IEnumerable<BigGanSnConv2d> Convs() => [theta, phi, g, o];
}
