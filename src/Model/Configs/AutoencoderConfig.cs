namespace LiteVae.Model.Configs;

/// <summary>
/// The whole autoencoder (reference LiteAutoencoderKL, spec 6). The encoder's output width is derived:
/// 2 x embed_dim moments when use_quant is false (the reference overwrites latent_dim so), embed_dim
/// when use_quant is true (quant_conv then maps embed_dim to 2 x embed_dim). The decoder's z_channels
/// is always embed_dim.
/// </summary>
public sealed record AutoencoderConfig
{
    public int EmbedDim { get; }
    public bool UseQuant { get; }
    public EncoderConfig Encoder { get; }
    public DecoderConfig Decoder { get; }

    public AutoencoderConfig(int embedDim, bool useQuant, EncoderConfig encoder, DecoderConfig decoder)
    {
        if (embedDim < 1)
            throw new ModelConfigException("embed_dim", $"must be at least 1 (got {embedDim})");
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(decoder);
        if (decoder.ZChannels != embedDim)
            throw new ModelConfigException("decoder.z_channels", $"({decoder.ZChannels}) must equal embed_dim ({embedDim})");
        if (decoder.Upsampling != encoder.Downsampling)
            throw new ModelConfigException("decoder.channel_mult",
                $"the decoder upsamples by {decoder.Upsampling} (2^(entries - 1), {decoder.ChannelMult.Count} entries) but the encoder " +
                $"downsamples by {encoder.Downsampling} (2^dct_levels, dct_levels = {encoder.DctLevels}); make them equal");
        if (decoder.OutChannels != encoder.InChannels)
            throw new ModelConfigException("decoder.out_channels", $"({decoder.OutChannels}) must equal encoder.in_channels ({encoder.InChannels})");
        EmbedDim = embedDim;
        UseQuant = useQuant;
        Encoder = encoder;
        Decoder = decoder;
    }

    /// <summary>The reference's latent_dim after its use_quant override.</summary>
    public int EncoderOutChannels => UseQuant ? EmbedDim : 2 * EmbedDim;

    /// <summary>LiteVAE with a preset encoder (S, B, M, L), the reference decoder and no quant convs.</summary>
    public static AutoencoderConfig Preset(string encoderPreset, int embedDim = 12) =>
        new(embedDim, false, EncoderConfig.Preset(encoderPreset), DecoderConfig.Reference(embedDim));
}
