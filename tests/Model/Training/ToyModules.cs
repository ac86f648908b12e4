using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LiteVae.Model.Tests.Training;

/// <summary>A tiny conv net for trainer tests: conv → SiLU → conv → global mean → linear.</summary>
internal sealed class ToyNet : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear head;

    public ToyNet(int width = 8, long seed = 1) : base("toy")
    {
        torch.manual_seed(seed);
        conv1 = Conv2d(3, width, 3, padding: 1);
        conv2 = Conv2d(width, width, 3, padding: 1);
        head = Linear(width, 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = functional.silu(conv1.call(x));
        h = conv2.call(h).mean([2, 3]);
        return scope.MoveToOuter(head.call(h));
    }
}
