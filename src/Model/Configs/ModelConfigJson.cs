using System.Globalization;
using System.Text;

namespace LiteVae.Model.Configs;

/// <summary>
/// The model config as JSON under the reference's parameter names (the same keys as the <c>model</c>
/// section of configs/model/*.conf), stored in every weights file we write so that a file says which
/// model it is. JSON is valid HOCON, so the Host reads it back through the same binder (and the same
/// validation) as a config file.
/// </summary>
public static class ModelConfigJson
{
    /// <summary>The safetensors metadata key (and the exported .ckpt's top-level key) holding the JSON.</summary>
    public const string MetadataKey = "litevae.model";

    public static string Write(AutoencoderConfig c)
    {
        var e = c.Encoder;
        var d = c.Decoder;
        var sb = new StringBuilder();
        sb.Append("{\"embed_dim\":").Append(c.EmbedDim).Append(",\"use_quant\":").Append(c.UseQuant ? "true" : "false");
        sb.Append(",\"encoder\":{\"in_channels\":").Append(e.InChannels)
          .Append(",\"dct_levels\":").Append(e.DctLevels)
          .Append(",\"extractor_channels\":").Append(e.ExtractorChannels)
          .Append(",\"extractor_mult\":").Append(List(e.ExtractorMult))
          .Append(",\"extractor_resblocks\":").Append(e.ExtractorResblocks)
          .Append(",\"aggregate_channels\":").Append(e.AggregateChannels)
          .Append(",\"aggregate_mult\":").Append(List(e.AggregateMult))
          .Append(",\"aggregate_resblocks\":").Append(e.AggregateResblocks).Append('}');
        sb.Append(",\"decoder\":{\"channels\":").Append(d.Channels)
          .Append(",\"out_channels\":").Append(d.OutChannels)
          .Append(",\"channel_mult\":").Append(List(d.ChannelMult))
          .Append(",\"num_res_blocks\":").Append(d.NumResBlocks)
          .Append(",\"dropout\":").Append(d.Dropout.ToString("R", CultureInfo.InvariantCulture)).Append("}}");
        return sb.ToString();
    }

    private static string List(IReadOnlyList<int> values) => "[" + string.Join(",", values) + "]";
}
