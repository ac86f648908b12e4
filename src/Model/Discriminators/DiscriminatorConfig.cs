namespace LiteVae.Model.Discriminators;

/// <summary>
/// A discriminator's settings. <see cref="Problems"/> lists what is wrong, keyed by the config key
/// names (snake_case, as in configs/model/disc-*.conf), so a config binder can name file and key.
/// </summary>
public abstract record DiscriminatorConfig
{
    /// <summary>The value of discriminator.type in a config file.</summary>
    public abstract string Type { get; }

    public abstract IEnumerable<(string Key, string Problem)> Problems();

    /// <summary>Throws one ArgumentException listing every problem (for configs built in code).</summary>
    public void EnsureValid()
    {
        var problems = Problems().ToList();
        if (problems.Count > 0)
            throw new ArgumentException($"{Type} discriminator config: " + string.Join("; ", problems.Select(p => $"{p.Key}: {p.Problem}")));
    }
}

/// <summary>PatchGAN (taming NLayerDiscriminator). Defaults = the reference: 2,765,633 params.</summary>
public sealed record PatchGanConfig(int InputNc = 3, int Ndf = 64, int NLayers = 3, bool UseBn = true, bool TamingInit = true)
    : DiscriminatorConfig
{
    public override string Type => "patchgan";

    public override IEnumerable<(string Key, string Problem)> Problems()
    {
        if (InputNc != 3) yield return ("input_nc", $"is {InputNc}; the discriminator sees RGB images, so it must be 3");
        if (Ndf < 1) yield return ("ndf", $"is {Ndf}; must be at least 1");
        if (NLayers < 1 || NLayers > 6) yield return ("n_layers", $"is {NLayers}; must be 1 to 6");
    }
}

/// <summary>
/// U-Net GAN with BigGAN layers. d_ch 16 / 32 / 64 = S / M / L. attention_resolutions: where to put
/// an SA-GAN block, named by the down-block output size at a 256 input (128, 64, 32, 16 or 8);
/// empty = none (the LiteVAE setting).
/// </summary>
public sealed record UNetGanConfig(int DCh = 16, IReadOnlyList<int>? Attention = null) : DiscriminatorConfig
{
    public static readonly int[] AllowedAttention = [128, 64, 32, 16, 8];
    /// <summary>The width (x d_ch) of the down block each allowed attention resolution follows.</summary>
    private static readonly int[] AttentionWidth = [1, 2, 4, 8, 8];

    public IReadOnlyList<int> AttentionResolutions => Attention ?? [];

    public override string Type => "unetgan";

    public static UNetGanConfig Preset(string size) => size.ToUpperInvariant() switch
    {
        "S" => new UNetGanConfig(16),
        "M" => new UNetGanConfig(32),
        "L" => new UNetGanConfig(64),
        _ => throw new ArgumentException($"unknown UNetGAN preset '{size}' (S, M or L)."),
    };

    public override IEnumerable<(string Key, string Problem)> Problems()
    {
        if (DCh < 1) yield return ("d_ch", $"is {DCh}; must be at least 1");
        foreach (int r in AttentionResolutions)
        {
            int index = Array.IndexOf(AllowedAttention, r);
            if (index < 0)
                yield return ("attention_resolutions", $"{r} is not one of {string.Join(", ", AllowedAttention)}");
            else if (DCh >= 1 && DCh * AttentionWidth[index] % 8 != 0)
                yield return ("attention_resolutions", $"attention at {r} sees {DCh * AttentionWidth[index]} channels (d_ch x {AttentionWidth[index]}), which must be a multiple of 8");
        }
    }
}

/// <summary>
/// GigaGAN-style discriminator. Defaults = the configuration that reproduces the README's
/// 14,378,276 parameters: msio false, pred_layers 3, conv_blocks 2, no BN, base 4096, max 256,
/// attention at 16 and 8. (The reference's embedding_channels must be none: its default crashes.)
/// </summary>
public sealed record GigaGanConfig(
    int ImageSize = 256,
    int BaseChannels = 4096,
    int MaxChannels = 256,
    int ConvBlocks = 2,
    int PredLayers = 3,
    IReadOnlyList<int>? Attention = null,
    int HeadDim = 64,
    double AttnResGain = 0.5,
    bool Msio = false,
    bool UseBn = false,
    bool ConvBias = true) : DiscriminatorConfig
{
    public IReadOnlyList<int> AttentionResolutions => Attention ?? [16, 8];

    public override string Type => "gigagan";

    public override IEnumerable<(string Key, string Problem)> Problems()
    {
        if (ImageSize < 16 || (ImageSize & (ImageSize - 1)) != 0)
            yield return ("image_size", $"is {ImageSize}; must be a power of two, at least 16");
        if (MaxChannels < 1) yield return ("max_channels", $"is {MaxChannels}; must be at least 1");
        if (BaseChannels < 1) yield return ("base_channels", $"is {BaseChannels}; must be at least 1");
        if (ConvBlocks < 0) yield return ("conv_blocks", $"is {ConvBlocks}; must be 0 or more");
        if (PredLayers < 1) yield return ("pred_layers", $"is {PredLayers}; must be at least 1");
        if (HeadDim < 1) yield return ("head_dim", $"is {HeadDim}; must be at least 1");
        if (AttnResGain < 0 || double.IsNaN(AttnResGain)) yield return ("attn_res_gain", $"is {AttnResGain}; must be 0 or more");
        if (ImageSize >= 16 && MaxChannels >= 1 && BaseChannels >= 1 && HeadDim >= 1)
        {
            for (int size = ImageSize / 2; size >= 4; size /= 2)
            {
                long ch = Math.Min(BaseChannels / size, MaxChannels);
                if (ch < 1)
                    yield return ("base_channels", $"gives {ch} channels at size {size}; base_channels / size must be at least 1");
                else if (AttentionResolutions.Contains(size) && (ch % HeadDim != 0 || ch % 32 != 0))
                    yield return ("attention_resolutions", $"attention at {size} has {ch} channels, which must be a multiple of head_dim ({HeadDim}) and of 32 (GroupNorm groups)");
            }
        }
    }
}

/// <summary>No discriminator (Phase A). dummy_param adds one scalar parameter named dummy.</summary>
public sealed record NullDiscriminatorConfig(bool DummyParam = false) : DiscriminatorConfig
{
    public override string Type => "none";

    public override IEnumerable<(string Key, string Problem)> Problems() => [];
}
