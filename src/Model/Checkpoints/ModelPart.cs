namespace LiteVae.Model.Checkpoints;

/// <summary>
/// Which half of the autoencoder a command runs, and so which state-dict keys it needs: encode needs
/// encoder.* (+ quantizer.quant_conv.* with use_quant), decode needs decoder.* (+
/// quantizer.post_quant_conv.*). A weights file may then hold just that half.
/// </summary>
public enum ModelPart
{
    Both,
    Encoder,
    Decoder,
}

public static class ModelParts
{
    private static readonly string[] EncoderPrefixes = ["encoder.", "quantizer.quant_conv."];
    private static readonly string[] DecoderPrefixes = ["decoder.", "quantizer.post_quant_conv."];
    private static readonly string[] AllPrefixes = ["encoder.", "decoder.", "quantizer."];

    /// <summary>Whether <paramref name="key"/> (a reference state-dict key) belongs to <paramref name="part"/>.</summary>
    public static bool Owns(this ModelPart part, string key)
    {
        var prefixes = part switch
        {
            ModelPart.Encoder => EncoderPrefixes,
            ModelPart.Decoder => DecoderPrefixes,
            _ => AllPrefixes,
        };
        foreach (var p in prefixes)
            if (key.StartsWith(p, StringComparison.Ordinal)) return true;
        return false;
    }

    public static string Describe(this ModelPart part) => part switch
    {
        ModelPart.Encoder => "the encoder (encoder.*, and quantizer.quant_conv.* with use_quant)",
        ModelPart.Decoder => "the decoder (decoder.*, and quantizer.post_quant_conv.* with use_quant)",
        _ => "the whole autoencoder (encoder.*, decoder.*, and quantizer.* with use_quant)",
    };
}
