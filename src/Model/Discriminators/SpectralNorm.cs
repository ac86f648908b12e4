using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// The two spectral-normalisation flavours the reference discriminators use. Both estimate the top
/// singular value of the weight (reshaped to out x rest) with one power-iteration step per training
/// forward and divide the weight by it. The power iteration always runs in fp32, whatever the
/// weight's dtype, and its vectors are constants to autograd: the gradient flows only through the
/// weight in sigma = u^T W v.
/// </summary>
public static class SpectralNorm
{
    public const double Eps = 1e-12;

    /// <summary>
    /// torch.nn.utils.spectral_norm semantics (dim 0): <paramref name="u"/> has out elements,
    /// <paramref name="v"/> has in*k*k. Training: v = normalize(W^T u), u = normalize(W v), both
    /// written back into the buffers. Evaluation: the stored u and v are used unchanged.
    /// </summary>
    public static Tensor TorchStyle(Tensor weight, Tensor u, Tensor v, bool training, double eps = Eps)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(float32).reshape(weight.shape[0], -1);
        if (training)
        {
            using (no_grad())
            {
                var wd = w.detach();
                var newV = F.normalize(mv(wd.t(), u.to(float32)), dim: 0, eps: eps);
                var newU = F.normalize(mv(wd, newV), dim: 0, eps: eps);
                v.copy_(newV);
                u.copy_(newU);
            }
        }
        // Copies, so that the next forward's in-place buffer update cannot touch what this graph saved.
        var uc = u.detach().to(float32).clone();
        var vc = v.detach().to(float32).clone();
        var sigma = dot(uc, mv(w, vc));
        return scope.MoveToOuter(weight / sigma.to(weight.dtype));
    }

    /// <summary>
    /// BigGAN semantics (one singular value, no Gram-Schmidt needed): <paramref name="u0"/> is 1 x out.
    /// v = normalize(u W), u' = normalize(v W^T), sigma = v W^T u'^T. Training writes u' into
    /// <paramref name="u0"/> and sigma into <paramref name="sv0"/> (a logging buffer); evaluation
    /// still derives v and u' from the stored u0 but writes nothing.
    /// </summary>
    public static Tensor BigGanStyle(Tensor weight, Tensor u0, Tensor sv0, bool training, double eps = Eps)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(float32).reshape(weight.shape[0], -1);
        Tensor v, u;
        using (no_grad())
        {
            var wd = w.detach();
            v = F.normalize(matmul(u0.to(float32), wd), dim: 1, eps: eps);
            u = F.normalize(matmul(v, wd.t()), dim: 1, eps: eps);
            if (training)
                u0.copy_(u);
        }
        var sigma = matmul(matmul(v, w.t()), u.t()).squeeze();
        if (training)
        {
            using (no_grad())
                sv0.copy_(sigma.detach());
        }
        return scope.MoveToOuter(weight / sigma.to(weight.dtype));
    }
}
