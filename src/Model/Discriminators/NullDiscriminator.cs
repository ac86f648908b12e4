using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// No discriminator (Phase A, spec 7.4): no logits, so the adversarial terms are zero and the
/// trainer skips the discriminator step. With dummy_param it holds one scalar parameter named
/// dummy (as the reference), so an optimizer can be built and reference checkpoints load.
/// </summary>
public sealed class NullDiscriminator : nn.Module<Tensor, Tensor>, IDiscriminator
{
    private readonly Parameter? dummy;

    public NullDiscriminator(NullDiscriminatorConfig config) : base(nameof(NullDiscriminator))
    {
        Config = config;
        dummy = config.DummyParam ? new Parameter(tensor(0f)) : null;
        RegisterComponents();
    }

    public NullDiscriminatorConfig Config { get; }

    public string Type => "none";

    public nn.Module<Tensor, Tensor> Module => this;

    public IReadOnlyList<Tensor> Logits(Tensor images) => [];

    public override Tensor forward(Tensor images) => zeros(new long[] { images.shape[0], 0 }, device: images.device);
}
