using LiteVae.Host.Config;
using static TorchSharp.torch;

namespace LiteVae.Host.Inspection;

/// <summary>
/// One inspectable part of a model file (encoder, decoder, discriminator, ...): how to build it and
/// how to run one forward at a given batch size for an image of the requested resolution.
/// </summary>
/// <param name="Name">Row label, e.g. "encoder".</param>
/// <param name="Input">What one sample's input is, for the report, e.g. "3 x 256 x 256 image".</param>
/// <param name="Build">Constructs the module (random weights; only shapes matter).</param>
/// <param name="Forward">Runs the module once at the given batch size and disposes its outputs.</param>
/// <param name="Notes">Assumptions the part made (e.g. an embed_dim the file did not set).</param>
public sealed record InspectPart(string Name, string Input, Func<nn.Module> Build, Action<nn.Module, long> Forward,
    IReadOnlyList<string> Notes);

/// <summary>
/// Finds the parts a model file has. Each provider looks for its own section and returns its parts
/// (none when the section is absent); add a provider with one line in <see cref="Providers"/>.
/// </summary>
public static class InspectCatalog
{
    public delegate IEnumerable<InspectPart> Provider(HoconFile file, int resolution);

    public static IEnumerable<Provider> Providers()
    {
        yield return AutoencoderInspect.Parts;
        yield return DiscriminatorInspect.Parts;
    }

    public static IReadOnlyList<InspectPart> PartsOf(HoconFile file, int resolution) =>
        Providers().SelectMany(p => p(file, resolution)).ToList();
}
