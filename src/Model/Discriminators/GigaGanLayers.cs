using LiteVae.Model.Analysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// The GigaGAN "adaptive" 1x1 conv with no embedding: a plain 1x1 conv whose 1 x out x in x 1 x 1
/// weight is wrapped in PyTorch spectral norm. That reshapes the weight to a single row, so the
/// "spectral" norm is its Frobenius norm: the applied weight always has unit Frobenius norm.
/// Keys (under the wrapper's conv.): weight_orig, filterbias (1 x out, if bias), weight_u (1), weight_v (out*in).
/// </summary>
public sealed class AdaptiveConvKernel : nn.Module<Tensor, Tensor>, IMacCounted
{
    private readonly Parameter weight_orig;
    private readonly Parameter? filterbias;
    private readonly Tensor weight_u;
    private readonly Tensor weight_v;
    private readonly long _in, _out;

    public AdaptiveConvKernel(long inChannels, long outChannels, bool bias) : base(nameof(AdaptiveConvKernel))
    {
        _in = inChannels;
        _out = outChannels;
        var w = empty(new long[] { 1, outChannels, inChannels, 1, 1 });
        // kaiming_normal(fan_in, leaky_relu a=0) as the reference; only the direction matters after normalisation.
        using (no_grad()) nn.init.kaiming_normal_(w, a: 0, mode: nn.init.FanInOut.FanIn, nonlinearity: nn.init.NonlinearityType.LeakyReLU);
        weight_orig = new Parameter(w);
        filterbias = bias ? LayerInit.Zeros(1, outChannels) : null;
        weight_u = F.normalize(randn(1), dim: 0, eps: SpectralNorm.Eps);
        weight_v = F.normalize(randn(outChannels * inChannels), dim: 0, eps: SpectralNorm.Eps);
        RegisterComponents();
    }

    /// <summary>The applied out x in x 1 x 1 weight (training mode runs a power-iteration step).</summary>
    public Tensor NormalizedWeight()
    {
        using var w = SpectralNorm.TorchStyle(weight_orig, weight_u, weight_v, training);
        return w.reshape(_out, _in, 1, 1);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var w = NormalizedWeight();
        var b = filterbias?.reshape(_out);
        return scope.MoveToOuter(F.conv2d(x, w, b));
    }

    public long CountMacs(Tensor input, Tensor output) => output.numel() * _in;
}

/// <summary>Wrapper that gives the reference's extra key level: predictors.*.main.{i}.conv.*.</summary>
public sealed class AdaptiveConv : nn.Module<Tensor, Tensor>
{
    private readonly AdaptiveConvKernel conv;

    public AdaptiveConv(long inChannels, long outChannels, bool bias) : base(nameof(AdaptiveConv))
    {
        conv = new AdaptiveConvKernel(inChannels, outChannels, bias);
        RegisterComponents();
    }

    public AdaptiveConvKernel Kernel => conv;

    public override Tensor forward(Tensor x) => conv.call(x);
}

/// <summary>
/// GigaGAN's SimplePredictor on nc channels with n layers: [AConv(bias), LReLU(0.2)], (n-1) x
/// [AConv(no bias), BN or Identity, LReLU(0.2)], SN-Conv1x1(nc -> 1). Keys main.{i}.*.
/// </summary>
public sealed class SimplePredictor : nn.Module<Tensor, Tensor>
{
    private readonly Sequential main;

    public SimplePredictor(long channels, int layers, bool useBn) : base(nameof(SimplePredictor))
    {
        var seq = new List<nn.Module<Tensor, Tensor>> { new AdaptiveConv(channels, channels, bias: true), nn.LeakyReLU(0.2) };
        for (int n = 1; n < layers; n++)
        {
            // The reference decides the bias by "norm is not BatchNorm", which is never true here.
            seq.Add(new AdaptiveConv(channels, channels, bias: false));
            seq.Add(useBn ? nn.BatchNorm2d(channels) : nn.Identity());
            seq.Add(nn.LeakyReLU(0.2));
        }
        seq.Add(new TorchSnConv2d(channels, 1, 1));
        main = nn.Sequential(seq);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => main.call(x);
}

/// <summary>
/// A level's entry conv: an image (3 channels) first goes through SN-Conv3x3(3 -> in) + LReLU(0.1);
/// then SN-Conv(in -> out, k4, s2, p2, no bias). Keys img_conv.0.*, chan_conv.*.
/// </summary>
public sealed class MultiConv : nn.Module<Tensor, Tensor>
{
    private readonly Sequential img_conv;
    private readonly TorchSnConv2d chan_conv;
    private readonly long _imgChannels;

    public MultiConv(long imgChannels, long inChannels, long outChannels) : base(nameof(MultiConv))
    {
        _imgChannels = imgChannels;
        img_conv = nn.Sequential(new TorchSnConv2d(imgChannels, inChannels, 3, padding: 1), nn.LeakyReLU(0.1));
        chan_conv = new TorchSnConv2d(inChannels, outChannels, 4, stride: 2, padding: 2, bias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (x.shape[1] != _imgChannels)
            return chan_conv.call(x);
        using var features = img_conv.call(x);
        return chan_conv.call(features);
    }
}
