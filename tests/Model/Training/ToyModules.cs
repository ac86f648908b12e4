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
        conv1 = Conv2d(3, width, 3, padding: 1);
        conv2 = Conv2d(width, width, 3, padding: 1);
        head = Linear(width, 2);
        RegisterComponents();
        // Initialise from a private generator: the global RNG is shared by tests running in parallel.
        using var g = new Generator((ulong)seed);
        using (no_grad())
            foreach (var p in parameters())
            {
                double fanIn = p.dim() > 1 ? p.numel() / p.shape[0] : width;
                using var r = randn(p.shape, generator: g);
                p.copy_(r / Math.Sqrt(fanIn));
            }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = functional.silu(conv1.call(x));
        h = conv2.call(h).mean([2, 3]);
        return scope.MoveToOuter(head.call(h));
    }
}
