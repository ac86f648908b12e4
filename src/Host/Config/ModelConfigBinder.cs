using LiteVae.Model.Configs;

namespace LiteVae.Host.Config;

/// <summary>
/// Binds the `model` section of a HOCON file (configs/model/*.conf) to the validated model records.
/// Keys use the reference's own parameter names. Every error names the file and the full key.
/// <code>
/// model { embed_dim = 12, use_quant = false,
///         encoder { in_channels = 3, dct_levels = 3, extractor_channels = 32, extractor_mult = [1,2,3],
///                   extractor_resblocks = 4, aggregate_channels = 32, aggregate_mult = [1,2,3], aggregate_resblocks = 4 }
///         decoder { channels = 128, out_channels = 3, channel_mult = [1,2,4,4], num_res_blocks = 2, dropout = 0.0 } }
/// </code>
/// The encoder's output width (the reference's latent_dim) and the decoder's z_channels are derived
/// from embed_dim and use_quant; if a file sets them anyway they must agree.
/// </summary>
public static class ModelConfigBinder
{
    public const string EncoderPath = "model.encoder";
    public const string DecoderPath = "model.decoder";

    private static readonly string[] EncoderKeys =
    [
        "in_channels", "dct_levels", "extractor_channels", "extractor_mult", "extractor_resblocks",
        "aggregate_channels", "aggregate_mult", "aggregate_resblocks",
        "latent_dim", "image_size", // reference keys: latent_dim is derived and checked, image_size is unused
    ];

    private static readonly string[] DecoderKeys =
    [
        "channels", "out_channels", "channel_mult", "num_res_blocks", "dropout",
        "z_channels", "resamp_with_conv", // reference keys: z_channels = embed_dim, resamp_with_conv must be true
    ];

    public static bool HasEncoder(HoconFile file) => file.Has(EncoderPath);
    public static bool HasDecoder(HoconFile file) => file.Has(DecoderPath);
    public static bool HasAutoencoder(HoconFile file) => HasEncoder(file) && HasDecoder(file) && file.Has("model.embed_dim");

    /// <summary>The whole autoencoder: needs model.embed_dim, model.encoder and model.decoder.</summary>
    public static AutoencoderConfig Bind(HoconFile file)
    {
        int embedDim = file.Int("model.embed_dim", min: 1);
        bool useQuant = file.Bool("model.use_quant", fallback: false);
        var encoder = BindEncoder(file, useQuant ? embedDim : 2 * embedDim);
        var decoder = BindDecoder(file, embedDim);
        return Wrap(file, () => new AutoencoderConfig(embedDim, useQuant, encoder, decoder));
    }

    /// <summary>
    /// A model config embedded in a weights file (JSON under <c>litevae.model</c>, see ModelConfigJson): JSON is
    /// HOCON, so it is bound and validated exactly as the <c>model</c> section of a config file.
    /// </summary>
    public static AutoencoderConfig FromJson(string json, string source) =>
        Bind(HoconFile.Parse("model = " + json, source));

    /// <param name="outChannels">The encoder's output width (2 x embed_dim without quant convs).</param>
    public static EncoderConfig BindEncoder(HoconFile file, int outChannels)
    {
        RejectUnknownKeys(file, EncoderPath, EncoderKeys);
        string k(string key) => $"{EncoderPath}.{key}";
        var config = Wrap(file, () => new EncoderConfig(
            file.Int(k("in_channels"), fallback: 3),
            file.Int(k("dct_levels"), fallback: 3),
            file.Int(k("extractor_channels")),
            IntList(file, k("extractor_mult")),
            file.Int(k("extractor_resblocks")),
            file.Int(k("aggregate_channels")),
            IntList(file, k("aggregate_mult")),
            file.Int(k("aggregate_resblocks"))));
        if (file.Has(k("latent_dim")) && file.Int(k("latent_dim")) != outChannels)
            throw new ConfigException($"{file.Source}: key '{k("latent_dim")}' = {file.Int(k("latent_dim"))} disagrees with the derived " +
                $"encoder output width {outChannels} (2 x embed_dim without quant convs, embed_dim with them); remove the key.");
        return config;
    }

    public static DecoderConfig BindDecoder(HoconFile file, int zChannels)
    {
        RejectUnknownKeys(file, DecoderPath, DecoderKeys);
        string k(string key) => $"{DecoderPath}.{key}";
        if (file.Has(k("z_channels")) && file.Int(k("z_channels")) != zChannels)
            throw new ConfigException($"{file.Source}: key '{k("z_channels")}' = {file.Int(k("z_channels"))} must equal model.embed_dim ({zChannels}); remove the key.");
        if (!file.Bool(k("resamp_with_conv"), fallback: true))
            throw new ConfigException($"{file.Source}: key '{k("resamp_with_conv")}' = false is not supported (the decoder always upsamples with a 3x3 conv).");
        return Wrap(file, () => new DecoderConfig(
            file.Int(k("channels")),
            zChannels,
            file.Int(k("out_channels"), fallback: 3),
            IntList(file, k("channel_mult")),
            file.Int(k("num_res_blocks")),
            file.Double(k("dropout"), fallback: 0.0)));
    }

    /// <summary>A list of integers; Akka's HOCON reads a scalar as an empty list, so the type is checked first.</summary>
    private static IReadOnlyList<int> IntList(HoconFile file, string key)
    {
        if (file.Has(key) && !file.Raw.GetValue(key).IsArray())
            throw new ConfigException($"{file.Source}: key '{key}' has the wrong type (expected a list of integers, e.g. [1, 2, 4]).");
        return file.IntList(key);
    }

    private static T Wrap<T>(HoconFile file, Func<T> build)
    {
        try
        {
            return build();
        }
        catch (ModelConfigException e)
        {
            throw new ConfigException($"{file.Source}: key 'model.{e.Key}' {e.Problem}.");
        }
    }

    private static void RejectUnknownKeys(HoconFile file, string path, string[] known)
    {
        if (!file.Has(path))
            throw new ConfigException($"{file.Source}: required section '{path}' is missing.");
        file.Section(path).RejectUnknown(known, path + ".");
    }
}
