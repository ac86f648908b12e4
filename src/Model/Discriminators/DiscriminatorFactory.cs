namespace LiteVae.Model.Discriminators;

/// <summary>Builds the discriminator a config record describes (on the CPU, freshly initialised).</summary>
public static class DiscriminatorFactory
{
    public static IDiscriminator Create(DiscriminatorConfig config) => config switch
    {
        PatchGanConfig c => new PatchGanDiscriminator(c),
        UNetGanConfig c => new UNetGanDiscriminator(c),
        GigaGanConfig c => new GigaGanDiscriminator(c),
        NullDiscriminatorConfig c => new NullDiscriminator(c),
        _ => throw new ArgumentException($"no discriminator for config type {config.GetType().Name}."),
    };
}
