using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LiteVae.Model.Perceptual;

/// <summary>Which backbone an LPIPS model uses.</summary>
public enum LpipsNet
{
    Vgg,
    Alex,
}

/// <summary>
/// LPIPS v0.1 exactly as the <c>lpips</c> Python package defines it: inputs in [-1, 1] go through the
/// scaling layer ((x - shift) / scale), the backbone's five taps are each divided by their per-pixel
/// channel L2 norm (+1e-10), squared differences go through a 1x1 conv without bias (<c>linK.model.1</c>,
/// after a dropout that is inactive in eval mode), are averaged over space and summed over the taps.
/// State-dict keys: <c>net.features.N.*</c> (the torchvision backbone) and <c>linK.model.1.weight</c>
/// (the lpips heads); the scaling constants are non-persistent buffers. The module is frozen and in
/// eval mode; gradients flow to the first input only (the reconstruction), the target branch runs
/// under no_grad. Returns one distance per image, shape [N].
/// </summary>
public sealed class Lpips : Module<Tensor, Tensor, Tensor>
{
    private const double NormEps = 1e-10;

    private readonly Tensor shift;
    private readonly Tensor scale;
    private readonly Module<Tensor, Tensor[]> net;
    private readonly LpipsHead lin0;
    private readonly LpipsHead lin1;
    private readonly LpipsHead lin2;
    private readonly LpipsHead lin3;
    private readonly LpipsHead lin4;

    public LpipsNet Net { get; }

    public Lpips(LpipsNet netKind) : base(nameof(Lpips))
    {
        Net = netKind;
        shift = tensor(new float[] { -0.030f, -0.088f, -0.188f }).reshape(1, 3, 1, 1);
        scale = tensor(new float[] { 0.458f, 0.448f, 0.450f }).reshape(1, 3, 1, 1);
        int[] channels;
        if (netKind == LpipsNet.Vgg) { net = new Vgg16Features(); channels = Vgg16Features.TapChannels; }
        else { net = new AlexNetFeatures(); channels = AlexNetFeatures.TapChannels; }
        lin0 = new LpipsHead(channels[0]);
        lin1 = new LpipsHead(channels[1]);
        lin2 = new LpipsHead(channels[2]);
        lin3 = new LpipsHead(channels[3]);
        lin4 = new LpipsHead(channels[4]);
        register_buffer(nameof(shift), shift, persistent: false);
        register_buffer(nameof(scale), scale, persistent: false);
        RegisterComponents();
        foreach (var p in parameters()) p.requires_grad = false;
        eval();
    }

    /// <summary>The well-known file name of the torchvision backbone weights for a net.</summary>
    public static string BackboneFileStem(LpipsNet n) => n == LpipsNet.Vgg ? "vgg16-397923af" : "alexnet-owt-7be5be79";

    /// <summary>
    /// Per-image LPIPS between <paramref name="input"/> (e.g. the reconstruction; differentiable) and
    /// <paramref name="target"/> (features computed without gradient), both N x 3 x H x W in [-1, 1].
    /// </summary>
    public override Tensor forward(Tensor input, Tensor target)
    {
        if (input.ndim != 4 || input.shape[1] != 3 || !input.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"LPIPS needs two N x 3 x H x W batches of the same shape, got [{string.Join(", ", input.shape)}] and [{string.Join(", ", target.shape)}].");
        using var scope = NewDisposeScope();
        Tensor[] targetTaps;
        using (no_grad())
            targetTaps = net.call(Scale(target));
        var inputTaps = net.call(Scale(input));
        LpipsHead[] heads = [lin0, lin1, lin2, lin3, lin4];
        Tensor? total = null;
        for (int k = 0; k < heads.Length; k++)
        {
            var diff = (UnitNormalize(inputTaps[k]) - UnitNormalize(targetTaps[k])).square();
            var layer = heads[k].call(diff).mean([2, 3]).reshape(-1);
            total = total is null ? layer : total + layer;
        }
        return scope.MoveToOuter(total!);
    }

    /// <summary>
    /// Always stays in eval mode: a parent's <c>train()</c> (e.g. the loss module that owns this
    /// network) must not switch on dropout or BatchNorm batch statistics in a frozen network.
    /// </summary>
    public override void train(bool train = true) => base.train(false);

    // TorchSharp 0.107's module.to() skips non-persistent buffers, so shift/scale stay fp32 on the CPU:
    // keep one copy per device and dtype (a per-call copy would also be a blocking GPU transfer).
    private (Tensor Shift, Tensor Scale)? _scaling;

    private Tensor Scale(Tensor x)
    {
        var cached = _scaling;
        if (cached is not { } c || c.Shift.device_type != x.device_type || c.Shift.device_index != x.device_index || c.Shift.dtype != x.dtype)
        {
            cached?.Shift.Dispose();
            cached?.Scale.Dispose();
            _scaling = cached = (shift.to(x.dtype, x.device).DetachFromDisposeScope(), scale.to(x.dtype, x.device).DetachFromDisposeScope());
        }
        return (x - cached.Value.Shift) / cached.Value.Scale;
    }

    private static Tensor UnitNormalize(Tensor f) => f / (f.square().sum(1, keepdim: true).sqrt() + NormEps);
}

/// <summary>An LPIPS linear head: <c>model = Sequential(Dropout, Conv2d(C, 1, 1, bias: false))</c>.</summary>
public sealed class LpipsHead : Module<Tensor, Tensor>
{
    private readonly Sequential model;

    public LpipsHead(long channels) : base(nameof(LpipsHead))
    {
        model = Sequential(Dropout(), Conv2d(channels, 1, 1, bias: false));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => model.call(x);
}
