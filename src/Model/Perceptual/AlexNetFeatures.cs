using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LiteVae.Model.Perceptual;

/// <summary>
/// The convolutional part of torchvision's AlexNet (<c>alexnet().features</c>, the "one weird trick"
/// variant: 64-192-384-256-256 channels), keys <c>features.N.weight/bias</c> as in torchvision so
/// <c>alexnet-owt-7be5be79.pth</c> loads. Returns the five LPIPS taps: relu1..relu5
/// (64/192/384/256/256 channels).
/// </summary>
public sealed class AlexNetFeatures : Module<Tensor, Tensor[]>
{
    public static readonly int[] TapIndices = [1, 4, 7, 9, 11];

    public static readonly int[] TapChannels = [64, 192, 384, 256, 256];

    private readonly Sequential features;
    private readonly Module<Tensor, Tensor>[] _layers;

    public AlexNetFeatures() : base(nameof(AlexNetFeatures))
    {
        _layers =
        [
            Conv2d(3, 64, 11, stride: 4, padding: 2), ReLU(inplace: true), MaxPool2d(3, 2),
            Conv2d(64, 192, 5, padding: 2), ReLU(inplace: true), MaxPool2d(3, 2),
            Conv2d(192, 384, 3, padding: 1), ReLU(inplace: true),
            Conv2d(384, 256, 3, padding: 1), ReLU(inplace: true),
            Conv2d(256, 256, 3, padding: 1), ReLU(inplace: true), MaxPool2d(3, 2),
        ];
        features = Sequential(_layers);
        RegisterComponents();
    }

    public override Tensor[] forward(Tensor x) => PerceptualTaps.Run(_layers, TapIndices, x);
}
