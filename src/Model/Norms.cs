using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model;

internal static class Norms
{
    /// <summary>
    /// GroupNorm with PyTorch's initialisation (weight 1, bias 0). TorchSharp 0.107 leaves both
    /// uninitialised (torch.empty), which gives garbage or NaN outputs.
    /// </summary>
    public static GroupNorm GroupNorm(long groups, long channels, double eps = 1e-5)
    {
        var norm = nn.GroupNorm(groups, channels, eps);
        using (no_grad())
        {
            norm.weight.fill_(1.0);
            norm.bias!.zero_();
        }
        return norm;
    }
}
