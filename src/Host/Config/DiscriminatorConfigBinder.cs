using LiteVae.Model.Discriminators;

namespace LiteVae.Host.Config;

/// <summary>
/// Binds a <c>discriminator { type = patchgan | unetgan | gigagan | none, ... }</c> section
/// (configs/model/disc-*.conf) to a validated <see cref="DiscriminatorConfig"/>. Key names are the
/// reference's constructor arguments in snake_case. Every error names the file and the key; unknown
/// keys are errors too, so a typo cannot silently fall back to a default.
/// </summary>
public static class DiscriminatorConfigBinder
{
    public const string SectionName = "discriminator";
    public static readonly string[] Types = ["patchgan", "unetgan", "gigagan", "none"];

    private static readonly Dictionary<string, string[]> KnownKeys = new()
    {
        ["patchgan"] = ["type", "input_nc", "ndf", "n_layers", "use_bn", "taming_init"],
        ["unetgan"] = ["type", "d_ch", "attention_resolutions"],
        ["gigagan"] = ["type", "image_size", "base_channels", "max_channels", "conv_blocks", "pred_layers", "attention_resolutions",
            "head_dim", "attn_res_gain", "msio", "use_bn", "conv_bias"],
        ["none"] = ["type", "dummy_param"],
    };

    public static DiscriminatorConfig Load(string path, IEnumerable<string>? overrides = null) => Bind(HoconFile.Load(path, overrides));

    /// <summary>Reads the discriminator section of <paramref name="file"/>.</summary>
    public static DiscriminatorConfig Bind(HoconFile file)
    {
        var d = file.Section(SectionName);
        string type = d.Choice("type", Types);
        foreach (string key in d.Raw.Root.GetObject().Items.Keys)
        {
            if (!KnownKeys[type].Contains(key))
                throw new ConfigException($"{file.Source}: key '{SectionName}.{key}' is not a {type} setting; known keys: {string.Join(", ", KnownKeys[type])}.");
        }
        DiscriminatorConfig config = type switch
        {
            "patchgan" => new PatchGanConfig(
                InputNc: d.Int("input_nc", 3),
                Ndf: d.Int("ndf", 64),
                NLayers: d.Int("n_layers", 3),
                UseBn: d.Bool("use_bn", true),
                TamingInit: d.Bool("taming_init", true)),
            "unetgan" => new UNetGanConfig(
                DCh: d.Int("d_ch"),
                Attention: d.IntList("attention_resolutions", [])),
            "gigagan" => new GigaGanConfig(
                ImageSize: d.Int("image_size", 256),
                BaseChannels: d.Int("base_channels", 4096),
                MaxChannels: d.Int("max_channels", 256),
                ConvBlocks: d.Int("conv_blocks", 2),
                PredLayers: d.Int("pred_layers", 3),
                Attention: d.IntList("attention_resolutions", [16, 8]),
                HeadDim: d.Int("head_dim", 64),
                AttnResGain: d.Double("attn_res_gain", 0.5),
                Msio: d.Bool("msio", false),
                UseBn: d.Bool("use_bn", false),
                ConvBias: d.Bool("conv_bias", true)),
            _ => new NullDiscriminatorConfig(DummyParam: d.Bool("dummy_param", false)),
        };
        var problem = config.Problems().FirstOrDefault();
        if (problem.Key is not null)
            throw new ConfigException($"{file.Source}: key '{SectionName}.{problem.Key}' {problem.Problem}.");
        return config;
    }
}
