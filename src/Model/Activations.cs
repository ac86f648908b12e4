using static TorchSharp.torch;

namespace LiteVae.Model;

/// <summary>Activation helpers shared by the encoder and decoder blocks.</summary>
internal static class Activations
{
    /// <summary>
    /// SiLU that overwrites its input when no gradient is being recorded (inference: saves one
    /// activation-sized allocation per call). Under autograd, an in-place SiLU makes libtorch save a
    /// clone of the input for the backward pass, so the out-of-place form is cheaper there.
    /// Only call this on a tensor the caller owns and does not need afterwards.
    /// </summary>
    public static Tensor SiluOwned(Tensor x) =>
        is_grad_enabled() ? nn.functional.silu(x) : nn.functional.silu(x, inplace: true);
}
