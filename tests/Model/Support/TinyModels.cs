using LiteVae.Model.Configs;

namespace LiteVae.Model.Tests.Support;

internal static class TinyModels
{
    /// <summary>A 3-level LiteVAE small enough for CPU tests at 32-64 px (8x downsampling, nz 4).</summary>
    public static AutoencoderConfig Config(int embedDim = 4, bool useQuant = false) => new(
        embedDim, useQuant,
        new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1),
        new DecoderConfig(8, embedDim, 3, [1, 1, 2, 2], 0, 0.0));
}
