namespace LiteVae.Model.Configs;

/// <summary>
/// The reference LiteVAE decoder (spec 5.2): the SD-VAE decoder with self-modulated convolutions in
/// place of GroupNorm. <see cref="ZChannels"/> is the latent width; in an autoencoder it equals
/// embed_dim (spec pitfall 1), so the autoencoder config sets it rather than the decoder file.
/// </summary>
public sealed record DecoderConfig
{
    public int Channels { get; }
    public int ZChannels { get; }
    public int OutChannels { get; }
    public IReadOnlyList<int> ChannelMult { get; }
    public int NumResBlocks { get; }
    public double Dropout { get; }

    public DecoderConfig(int channels, int zChannels, int outChannels, IReadOnlyList<int> channelMult, int numResBlocks, double dropout = 0.0)
    {
        Require(channels >= 1, "channels", $"must be at least 1 (got {channels})");
        Require(zChannels >= 1, "z_channels", $"must be at least 1 (got {zChannels})");
        Require(outChannels >= 1, "out_channels", $"must be at least 1 (got {outChannels})");
        Require(channelMult is { Count: >= 1 }, "channel_mult", "must list at least one multiplier");
        Require(channelMult.All(m => m >= 1), "channel_mult", $"multipliers must be at least 1 (got [{string.Join(", ", channelMult)}])");
        Require(numResBlocks >= 0, "num_res_blocks", $"must be at least 0 (got {numResBlocks})");
        Require(dropout is >= 0.0 and < 1.0, "dropout", $"must be in [0, 1) (got {dropout})");
        Channels = channels;
        ZChannels = zChannels;
        OutChannels = outChannels;
        ChannelMult = channelMult.ToArray();
        NumResBlocks = numResBlocks;
        Dropout = dropout;
    }

    /// <summary>The reference decoder (channels 128, mult [1,2,4,4], 2 res blocks) for a latent width.</summary>
    public static DecoderConfig Reference(int zChannels) => new(128, zChannels, 3, [1, 2, 4, 4], 2, 0.0);

    /// <summary>Spatial upsampling factor: one x2 per level after the first.</summary>
    public int Upsampling => 1 << (ChannelMult.Count - 1);

    public DecoderConfig WithZChannels(int zChannels) => new(Channels, zChannels, OutChannels, ChannelMult, NumResBlocks, Dropout);

    private static void Require(bool ok, string key, string what)
    {
        if (!ok) throw new ModelConfigException("decoder." + key, what);
    }

    public bool Equals(DecoderConfig? other) =>
        other is not null && Channels == other.Channels && ZChannels == other.ZChannels && OutChannels == other.OutChannels
        && ChannelMult.SequenceEqual(other.ChannelMult) && NumResBlocks == other.NumResBlocks && Dropout.Equals(other.Dropout);

    public override int GetHashCode() => HashCode.Combine(Channels, ZChannels, OutChannels, ChannelMult.Count, NumResBlocks, Dropout);
}
