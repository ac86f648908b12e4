using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Losses;

/// <summary>The adversarial losses the reference defines correctly (spec 7.6).</summary>
public enum GanLossKind
{
    /// <summary>D = 0.5 (mean relu(1 - real) + mean relu(1 + fake)); G = -mean fake. The paper's baseline.</summary>
    Hinge,
    /// <summary>D = 0.5 (mean softplus(-real) + mean softplus(fake)); G = mean softplus(-fake).</summary>
    Logistic,
    /// <summary>Non-saturating with the reference's 1e-6 inside the logs.</summary>
    NonSaturating,
}

/// <summary>
/// Adversarial losses as pure functions of logits. The reference's mse, bce and wgan variants are
/// deliberately absent: their discriminator losses ignore the real logits (spec 7.6).
/// Multi-output discriminators: each output gets the loss with a mean over its elements, then the
/// outputs are averaged (spec 7.5); no outputs (the null discriminator) gives a zero loss.
/// </summary>
public static class GanLosses
{
    private const double NsatEps = 1e-6;

    /// <summary>Parses a config value: hinge, logistic or nsat.</summary>
    public static bool TryParse(string name, out GanLossKind kind)
    {
        switch (name)
        {
            case "hinge": kind = GanLossKind.Hinge; return true;
            case "logistic": kind = GanLossKind.Logistic; return true;
            case "nsat": kind = GanLossKind.NonSaturating; return true;
            default: kind = default; return false;
        }
    }

    public static readonly string[] Names = ["hinge", "logistic", "nsat"];

    /// <summary>Discriminator loss for one output: real logits should be high, fake low.</summary>
    public static Tensor Discriminator(GanLossKind kind, Tensor real, Tensor fake)
    {
        using var scope = NewDisposeScope();
        var loss = kind switch
        {
            GanLossKind.Hinge => 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean()),
            GanLossKind.Logistic => 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean()),
            GanLossKind.NonSaturating => -0.5 * ((sigmoid(real) + NsatEps).log().mean() + (1 - sigmoid(fake) + NsatEps).log().mean()),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return scope.MoveToOuter(loss);
    }

    /// <summary>Generator loss for one output, from the discriminator's logits on generated images.</summary>
    public static Tensor Generator(GanLossKind kind, Tensor fake)
    {
        using var scope = NewDisposeScope();
        var loss = kind switch
        {
            GanLossKind.Hinge => -fake.mean(),
            GanLossKind.Logistic => F.softplus(-fake).mean(),
            GanLossKind.NonSaturating => -(sigmoid(fake) + NsatEps).log().mean(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return scope.MoveToOuter(loss);
    }

    /// <summary>Mean over outputs of the per-output discriminator loss; outputs pair up by position.</summary>
    public static Tensor Discriminator(GanLossKind kind, IReadOnlyList<Tensor> real, IReadOnlyList<Tensor> fake)
    {
        if (real.Count != fake.Count)
            throw new ArgumentException($"discriminator gave {real.Count} outputs for real images and {fake.Count} for fake ones.");
        return MeanOver(real.Count, i => Discriminator(kind, real[i], fake[i]));
    }

    /// <summary>Mean over outputs of the per-output generator loss.</summary>
    public static Tensor Generator(GanLossKind kind, IReadOnlyList<Tensor> fake) =>
        MeanOver(fake.Count, i => Generator(kind, fake[i]));

    private static Tensor MeanOver(int count, Func<int, Tensor> term)
    {
        if (count == 0)
            return zeros(Array.Empty<long>());
        using var scope = NewDisposeScope();
        var total = term(0);
        for (int i = 1; i < count; i++)
            total = total + term(i);
        return scope.MoveToOuter(total / count);
    }
}
