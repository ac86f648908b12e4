using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LiteVae.Model.Perceptual;

/// <summary>
/// The convolutional part of torchvision's VGG16 (<c>vgg16().features</c>): 13 3x3 convs with ReLU and
/// five max-pools, state-dict keys <c>features.N.weight/bias</c> exactly as in torchvision, so
/// <c>vgg16-397923af.pth</c> loads as it is (its <c>classifier.*</c> keys are not used). Returns the
/// five activations LPIPS compares: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (64/128/256/512/512
/// channels; full, 1/2, 1/4, 1/8, 1/16 resolution).
/// </summary>
public sealed class Vgg16Features : Module<Tensor, Tensor[]>
{
    /// <summary>Indices in <c>features</c> after which a tap is taken (the ReLUs ending each block).</summary>
    public static readonly int[] TapIndices = [3, 8, 15, 22, 29];

    public static readonly int[] TapChannels = [64, 128, 256, 512, 512];

    private static readonly int[] Config = [64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1];

    private readonly Sequential features;
    private readonly Module<Tensor, Tensor>[] _layers; // the same modules as `features`, for tapping

    public Vgg16Features() : base(nameof(Vgg16Features))
    {
        var layers = new List<Module<Tensor, Tensor>>();
        long inChannels = 3;
        foreach (int c in Config)
        {
            if (c < 0) { layers.Add(MaxPool2d(2, 2)); continue; }
            layers.Add(Conv2d(inChannels, c, 3, padding: 1));
            layers.Add(ReLU(inplace: true));
            inChannels = c;
        }
        _layers = layers.ToArray();
        features = Sequential(_layers);
        RegisterComponents();
    }

    /// <summary>The five LPIPS taps for images already normalised by the caller.</summary>
    public override Tensor[] forward(Tensor x) => PerceptualTaps.Run(_layers, TapIndices, x);
}

/// <summary>Runs a layer list up to the last tap and keeps the activations after each tap index.</summary>
internal static class PerceptualTaps
{
    public static Tensor[] Run(Module<Tensor, Tensor>[] layers, int[] taps, Tensor x)
    {
        using var scope = NewDisposeScope();
        var outputs = new Tensor[taps.Length];
        var h = x;
        int next = 0;
        for (int i = 0; i <= taps[^1]; i++)
        {
            // The first layer must not run in place on the caller's tensor; later in-place ReLUs only
            // touch our own intermediates, and a tap is never followed by an in-place layer.
            h = layers[i].call(h);
            if (i == taps[next]) outputs[next++] = h;
        }
        foreach (var o in outputs) scope.MoveToOuter(o);
        return outputs;
    }
}
