using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// What the training loss needs from a discriminator. Images are N x 3 x H x W in [-1, 1]; every
/// returned tensor is a logit tensor whose first dimension is N. The loss applies the GAN loss to
/// each output with a mean over its elements and averages across outputs (spec 7.5), so a global
/// logit and a 129 x 129 map weigh the same.
/// </summary>
public interface IDiscriminator : IDisposable
{
    /// <summary>The config type name: patchgan, unetgan, gigagan or none.</summary>
    string Type { get; }

    /// <summary>
    /// PatchGAN: [N x 1 x h x w]. UNetGAN: [pixel map N x 1 x H x W, global N x 1]. GigaGAN: the
    /// per-level maps (unflattened), then the final N x 1 x 1 x 1 logit. Null: none.
    /// </summary>
    IReadOnlyList<Tensor> Logits(Tensor images);

    /// <summary>
    /// The module itself, for parameters(), train()/eval(), to(device) and state_dict(). Its forward
    /// returns every logit flattened per sample and concatenated (N x K), one tensor for tools such as
    /// the MAC profiler; training uses <see cref="Logits"/>.
    /// </summary>
    nn.Module<Tensor, Tensor> Module { get; }
}

internal static class DiscriminatorOutputs
{
    /// <summary>The N x K concatenation that discriminator forwards return.</summary>
    public static Tensor Concatenate(IReadOnlyList<Tensor> logits, long batch)
    {
        if (logits.Count == 0)
            return zeros(new long[] { batch, 0 });
        using var scope = NewDisposeScope();
        var flat = logits.Select(l => l.reshape(batch, -1)).ToArray();
        return scope.MoveToOuter(cat(flat, 1));
    }

    public static void RequireImages(Tensor images, string who)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException($"{who}: expected images N x 3 x H x W, got [{string.Join(", ", images.shape)}].");
    }
}
