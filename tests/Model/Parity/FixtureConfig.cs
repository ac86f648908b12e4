using System.Text.Json;
using LiteVae.Model.Configs;

namespace LiteVae.Model.Tests.Parity;

/// <summary>
/// Reads a fixture's "config" metadata (reference field names, see tests/fixtures/README.md) into an
/// AutoencoderConfig. Keys the reference also carries (latent_dim, z_channels) are checked when present.
/// </summary>
internal static class FixtureConfig
{
    public static AutoencoderConfig Parse(string json, string source)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        int embed = root.GetProperty("embed_dim").GetInt32();
        bool useQuant = root.TryGetProperty("use_quant", out var uq) && uq.GetBoolean();
        var e = root.GetProperty("encoder");
        var d = root.GetProperty("decoder");
        var encoder = new EncoderConfig(
            Int(e, "in_channels", 3), Int(e, "dct_levels", 3),
            Int(e, "extractor_channels"), Ints(e, "extractor_mult"), Int(e, "extractor_resblocks"),
            Int(e, "aggregate_channels"), Ints(e, "aggregate_mult"), Int(e, "aggregate_resblocks"));
        var decoder = new DecoderConfig(Int(d, "channels"), embed, Int(d, "out_channels", 3), Ints(d, "channel_mult"),
            Int(d, "num_res_blocks"), d.TryGetProperty("dropout", out var dr) ? dr.GetDouble() : 0.0);
        var config = new AutoencoderConfig(embed, useQuant, encoder, decoder);
        if (e.TryGetProperty("latent_dim", out var ld) && !useQuant && ld.GetInt32() != config.EncoderOutChannels && ld.GetInt32() != embed)
            throw new InvalidDataException($"{source}: encoder latent_dim {ld.GetInt32()} fits neither embed_dim nor 2 x embed_dim.");
        if (d.TryGetProperty("z_channels", out var zc) && zc.GetInt32() != embed)
            throw new InvalidDataException($"{source}: decoder z_channels {zc.GetInt32()} differs from embed_dim {embed}.");
        return config;
    }

    private static int Int(JsonElement e, string key, int? fallback = null) =>
        e.TryGetProperty(key, out var v) ? v.GetInt32() : fallback ?? throw new KeyNotFoundException($"config key '{key}' is missing.");

    private static int[] Ints(JsonElement e, string key) => e.GetProperty(key).EnumerateArray().Select(v => v.GetInt32()).ToArray();
}
