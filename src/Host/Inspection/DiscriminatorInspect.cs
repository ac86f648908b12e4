using LiteVae.Host.Config;
using LiteVae.Model.Discriminators;
using static TorchSharp.torch;

namespace LiteVae.Host.Inspection;

/// <summary>The `discriminator { type = ... }` section of a model file, for `litevae inspect`.</summary>
public static class DiscriminatorInspect
{
    public static IEnumerable<InspectPart> Parts(HoconFile file, int resolution)
    {
        if (!file.Has(DiscriminatorConfigBinder.SectionName))
            yield break;
        var config = DiscriminatorConfigBinder.Bind(file);
        if (config is NullDiscriminatorConfig)
            yield break; // Phase A: nothing to count.
        if (config is GigaGanConfig giga && giga.ImageSize != resolution)
            throw new ArgumentException($"--resolution {resolution}: the GigaGAN discriminator in {file.Source} is built for image_size {giga.ImageSize} only.");
        var discriminator = DiscriminatorFactory.Create(config, initialize: false);
        yield return new InspectPart("discriminator", $"{discriminator.Type}: 3 x {resolution} x {resolution} image",
            () => discriminator.Module,
            (m, b) => { using var x = zeros(b, 3, resolution, resolution); using var y = ((nn.Module<Tensor, Tensor>)m).call(x); },
            []);
    }
}
