namespace LiteVae.Model.Discriminators;

/// <summary>Builds the discriminator a config record describes, on the CPU.</summary>
public static class DiscriminatorFactory
{
    /// <param name="initialize">false skips U-Net GAN's orthogonal init (slow for L), for weights
    /// about to be loaded or a model that is only inspected; other kinds initialise cheaply anyway.</param>
    public static IDiscriminator Create(DiscriminatorConfig config, bool initialize = true) => config switch
    {
        PatchGanConfig c => new PatchGanDiscriminator(c),
        UNetGanConfig c => new UNetGanDiscriminator(c, initialize),
        GigaGanConfig c => new GigaGanDiscriminator(c),
        NullDiscriminatorConfig c => new NullDiscriminator(c),
        _ => throw new ArgumentException($"no discriminator for config type {config.GetType().Name}."),
    };
}
