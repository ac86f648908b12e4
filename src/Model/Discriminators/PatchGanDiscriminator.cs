using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// PatchGAN (taming's NLayerDiscriminator, spec 7.1), one Sequential named main so the keys are
/// main.0 ... main.11 as in PyTorch: Conv(3->ndf, k4 s2 p1) + LReLU(0.2); (n_layers-1) x
/// [Conv(k4 s2 p1, no bias), BN, LReLU]; Conv(k4 s1 p1, no bias), BN, LReLU; Conv(->1, k4 s1 p1).
/// With use_bn off the BN slots hold an Identity (keeping the indices) and, as in the reference,
/// the middle convs still have no bias. Output: N x 1 x 30 x 30 at 256.
/// </summary>
public sealed class PatchGanDiscriminator : nn.Module<Tensor, Tensor>, IDiscriminator
{
    private readonly Sequential main;

    public PatchGanDiscriminator(PatchGanConfig config) : base(nameof(PatchGanDiscriminator))
    {
        config.EnsureValid();
        Config = config;
        long ndf = config.Ndf;
        var layers = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Conv2d(config.InputNc, ndf, 4, stride: 2, padding: 1),
            nn.LeakyReLU(0.2),
        };
        long mult = 1;
        for (int n = 1; n <= config.NLayers; n++)
        {
            long prev = mult;
            mult = Math.Min(1L << n, 8);
            long stride = n < config.NLayers ? 2 : 1;
            layers.Add(nn.Conv2d(ndf * prev, ndf * mult, 4, stride: stride, padding: 1, bias: false));
            layers.Add(config.UseBn ? nn.BatchNorm2d(ndf * mult) : nn.Identity());
            layers.Add(nn.LeakyReLU(0.2));
        }
        layers.Add(nn.Conv2d(ndf * mult, 1, 4, stride: 1, padding: 1));
        main = nn.Sequential(layers);
        RegisterComponents();
        if (config.TamingInit)
            InitTaming();
    }

    public PatchGanConfig Config { get; }

    public string Type => "patchgan";

    public nn.Module<Tensor, Tensor> Module => this;

    /// <summary>taming's weights_init: conv weights N(0, 0.02); BN weight N(1, 0.02), bias 0. Conv biases keep PyTorch's default.</summary>
    private void InitTaming()
    {
        using var _ = no_grad();
        foreach (var (_, m) in main.named_children())
        {
            switch (m)
            {
                case Conv2d c: c.weight!.normal_(0.0, 0.02); break;
                case BatchNorm2d b: b.weight!.normal_(1.0, 0.02); b.bias!.zero_(); break;
            }
        }
    }

    public IReadOnlyList<Tensor> Logits(Tensor images)
    {
        DiscriminatorOutputs.RequireImages(images, "patchgan discriminator");
        return [main.call(images)];
    }

    public override Tensor forward(Tensor images)
    {
        using var map = main.call(images);
        return map.reshape(images.shape[0], -1);
    }
}
