using LiteVae.Model.Configs;
using LiteVae.Model.Decoder;
using LiteVae.Model.Distributions;
using LiteVae.Model.Encoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model;

/// <summary>
/// LiteVAE: encoder -> diagonal Gaussian posterior -> decoder (reference LiteAutoencoderKL, spec 6).
/// State-dict keys: encoder.*, decoder.*, and quantizer.{quant_conv,post_quant_conv}.* only when
/// use_quant is true (the reference keeps both 1x1 convs under a `quantizer` container).
/// Images are N x C x H x W in [-1, 1]; H and W must be multiples of 2^dct_levels (8 for the presets).
/// forward(x) = decode(sample(encode(x))).
/// </summary>
public sealed class LiteAutoencoder : nn.Module<Tensor, Tensor>
{
    private readonly LiteVaeEncoder encoder;
    private readonly LiteVaeDecoder decoder;
    private readonly Quantizer? quantizer;

    private readonly AutoencoderConfig _config;

    public LiteAutoencoder(AutoencoderConfig config) : base(nameof(LiteAutoencoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        encoder = new LiteVaeEncoder(config.Encoder, config.EncoderOutChannels);
        decoder = new LiteVaeDecoder(config.Decoder);
        quantizer = config.UseQuant ? new Quantizer(config.EmbedDim) : null;
        RegisterComponents();
    }

    public AutoencoderConfig Config => _config;
    public LiteVaeEncoder EncoderModule => encoder;
    public LiteVaeDecoder DecoderModule => decoder;

    /// <summary>The posterior for images N x C x H x W in [-1, 1]. The caller disposes it.</summary>
    public DiagonalGaussian Encode(Tensor x)
    {
        CheckImages(x);
        using var scope = NewDisposeScope();
        var h = encoder.call(x);
        var moments = quantizer is null ? h : quantizer.Quant(h);
        var posterior = DiagonalGaussian.FromMoments(moments);
        scope.MoveToOuter(posterior.Mean, posterior.LogVar);
        return posterior;
    }

    /// <summary>Images N x C x H x W (unbounded, in the model's dtype) from latents N x embed_dim x h x w (any float dtype).</summary>
    public Tensor Decode(Tensor z)
    {
        if (z.dim() != 4 || z.shape[1] != _config.EmbedDim)
            throw new ArgumentException($"expected latents N x {_config.EmbedDim} x h x w, got [{string.Join(", ", z.shape)}].");
        using var scope = NewDisposeScope();
        // Latents may come in another float dtype (e.g. fp32 files for a bf16 model).
        if (z.dtype != decoder.WeightDtype) z = z.to(decoder.WeightDtype);
        var input = quantizer is null ? z : quantizer.PostQuant(z);
        var images = decoder.call(input);
        return scope.MoveToOuter(images);
    }

    /// <summary>Encode, sample (or take the mode), decode. The caller disposes both results.</summary>
    public (Tensor Reconstruction, DiagonalGaussian Posterior) Reconstruct(Tensor x, bool samplePosterior = true, Generator? generator = null)
    {
        var posterior = Encode(x);
        try
        {
            using var scope = NewDisposeScope();
            var z = samplePosterior ? posterior.Sample(generator) : posterior.Mode();
            var reconstruction = Decode(z);
            return (scope.MoveToOuter(reconstruction), posterior);
        }
        catch
        {
            posterior.Dispose();
            throw;
        }
    }

    public override Tensor forward(Tensor x)
    {
        var (reconstruction, posterior) = Reconstruct(x);
        posterior.Dispose();
        return reconstruction;
    }

    private void CheckImages(Tensor x)
    {
        int factor = _config.Encoder.Downsampling, channels = _config.Encoder.InChannels;
        if (x.dim() != 4 || x.shape[1] != channels)
            throw new ArgumentException($"expected images N x {channels} x H x W, got [{string.Join(", ", x.shape)}].");
        if (x.shape[2] % factor != 0 || x.shape[3] % factor != 0)
            throw new ArgumentException($"image height and width must be multiples of {factor}, got {x.shape[2]} x {x.shape[3]}.");
    }

    /// <summary>The reference's optional 1x1 convs around the latent (use_quant = true).</summary>
    private sealed class Quantizer : nn.Module
    {
        private readonly Conv2d quant_conv;
        private readonly Conv2d post_quant_conv;

        public Quantizer(int embedDim) : base(nameof(Quantizer))
        {
            quant_conv = nn.Conv2d(embedDim, 2L * embedDim, 1);
            post_quant_conv = nn.Conv2d(embedDim, embedDim, 1);
            RegisterComponents();
        }

        public Tensor Quant(Tensor h) => quant_conv.call(h);
        public Tensor PostQuant(Tensor z) => post_quant_conv.call(z);
    }
}
