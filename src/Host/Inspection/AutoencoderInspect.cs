using LiteVae.Host.Config;
using LiteVae.Model.Configs;
using LiteVae.Model.Decoder;
using LiteVae.Model.Encoder;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Host.Inspection;

/// <summary>The encoder, decoder and (with use_quant) quant convs of a model file, for `litevae inspect`.</summary>
public static class AutoencoderInspect
{
    /// <summary>The reference latent width, assumed when a file has an encoder or decoder but no embed_dim.</summary>
    public const int DefaultEmbedDim = 12;

    public static IEnumerable<InspectPart> Parts(HoconFile file, int resolution)
    {
        bool hasEmbed = file.Has("model.embed_dim");
        int embed = hasEmbed ? file.Int("model.embed_dim", min: 1) : DefaultEmbedDim;
        bool useQuant = file.Bool("model.use_quant", fallback: false);
        var notes = hasEmbed ? new List<string>() : [$"model.embed_dim is not set in {file.Source}; assumed {DefaultEmbedDim} (the reference's)"];
        var parts = new List<InspectPart>();

        if (ModelConfigBinder.HasEncoder(file) && ModelConfigBinder.HasDecoder(file) && hasEmbed)
            ModelConfigBinder.Bind(file); // cross-checks (decoder upsampling = encoder downsampling, ...)

        if (ModelConfigBinder.HasEncoder(file))
        {
            int outChannels = useQuant ? embed : 2 * embed;
            var config = ModelConfigBinder.BindEncoder(file, outChannels);
            CheckResolution(file, resolution, config.Downsampling, "model.encoder.dct_levels");
            parts.Add(new InspectPart("encoder", $"{config.InChannels} x {resolution} x {resolution} image",
                () => new LiteVaeEncoder(config, outChannels),
                (m, b) => { using var x = zeros(b, config.InChannels, resolution, resolution); using var y = ((LiteVaeEncoder)m).call(x); },
                notes));
        }
        if (ModelConfigBinder.HasDecoder(file))
        {
            var config = ModelConfigBinder.BindDecoder(file, embed);
            CheckResolution(file, resolution, config.Upsampling, "model.decoder.channel_mult");
            int latent = resolution / config.Upsampling;
            parts.Add(new InspectPart("decoder", $"{embed} x {latent} x {latent} latent",
                () => new LiteVaeDecoder(config),
                (m, b) => { using var z = zeros(b, embed, latent, latent); using var y = ((LiteVaeDecoder)m).call(z); },
                notes));
        }
        if (useQuant && parts.Count > 0)
        {
            int factor = ModelConfigBinder.HasEncoder(file) ? 1 << file.Int("model.encoder.dct_levels", fallback: 3) : 8;
            int latent = resolution / factor;
            parts.Add(new InspectPart("quantizer", $"{embed} x {latent} x {latent} latent",
                () => nn.Sequential(("quant_conv", nn.Conv2d(embed, 2L * embed, 1)), ("post_quant_conv", nn.Conv2d(embed, embed, 1))),
                (m, b) =>
                {
                    var seq = (TorchSharp.Modules.Sequential)m;
                    using var z = zeros(b, embed, latent, latent);
                    foreach (var (_, layer) in seq.named_children())
                    {
                        using var y = ((nn.Module<Tensor, Tensor>)layer).call(z);
                    }
                },
                notes));
        }
        return parts;
    }

    private static void CheckResolution(HoconFile file, int resolution, int factor, string key)
    {
        if (resolution % factor != 0)
            throw new ArgumentException($"--resolution {resolution}: must be a multiple of {factor} for {file.Source} ({key}).");
    }
}
