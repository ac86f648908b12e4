using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Discriminators;

/// <summary>Parameter factories for the hand-written layers, matching PyTorch's defaults.</summary>
internal static class LayerInit
{
    /// <summary>
    /// PyTorch's default for Conv/Linear (kaiming_uniform with a = sqrt(5)) and their bias: both are
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    /// </summary>
    public static Parameter Uniform(long[] shape, long fanIn)
    {
        double bound = 1.0 / Math.Sqrt(fanIn);
        var t = empty(shape);
        using (no_grad()) t.uniform_(-bound, bound);
        return new Parameter(t, requires_grad: true);
    }

    public static Parameter Zeros(params long[] shape) => new(zeros(shape), requires_grad: true);

    public static Parameter Ones(params long[] shape) => new(ones(shape), requires_grad: true);
}
