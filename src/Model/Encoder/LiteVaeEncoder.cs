using LiteVae.Model.Configs;
using LiteVae.Model.Wavelets;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Encoder;

/// <summary>
/// The reference LiteVAE encoder (spec 3.2): a fixed Haar DWT (fp32, no gradient), one feature
/// extractor UNet per level, average pooling of each level's features down to the coarsest level,
/// a channel concat and the aggregator UNet, whose output is the moments (or, with use_quant, the
/// input of quant_conv).
/// </summary>
public sealed class LiteVaeEncoder : nn.Module<Tensor, Tensor>
{
    // Not in the reference state dict: the DWT's filters are a non-persistent buffer.
    private readonly HaarDwt dwt;
    private readonly ModuleList<UNet> extractors;
    private readonly ModuleList<AvgPool2d> poolers;
    private readonly UNet aggregator;

    private readonly EncoderConfig _config;
    private readonly int _outChannels;

    public LiteVaeEncoder(EncoderConfig config, int outChannels) : base(nameof(LiteVaeEncoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        if (outChannels < 1) throw new ArgumentException($"encoder output channels must be at least 1 (got {outChannels}).");
        _config = config;
        _outChannels = outChannels;
        int levels = config.DctLevels, bands = config.LevelChannels;

        dwt = new HaarDwt(config.InChannels, levels);
        extractors = new ModuleList<UNet>();
        poolers = new ModuleList<AvgPool2d>();
        for (int l = 0; l < levels; l++)
        {
            extractors.Add(new UNet(bands, bands, config.ExtractorChannels, config.ExtractorMult, config.ExtractorResblocks));
            long k = 1L << (levels - 1 - l); // level l+1 is at H/2^(l+1); pool it to H/2^levels
            poolers.Add(nn.AvgPool2d(k, k));
        }
        aggregator = new UNet(bands * levels, outChannels, config.AggregateChannels, config.AggregateMult, config.AggregateResblocks);
        RegisterComponents();
    }

    public EncoderConfig Config => _config;
    public int OutChannels => _outChannels;

    /// <summary>Moments (or pre-quant features) N x out x H/2^L x W/2^L from images N x C x H x W in [-1, 1].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // The DWT runs in fp32 whatever the model dtype; its levels are cast to the weights' dtype.
        var levels = dwt.Forward(x, aggregator.WeightDtype);
        var pooled = new Tensor[levels.Length];
        for (int l = 0; l < levels.Length; l++)
        {
            var features = extractors[l].call(levels[l]);
            levels[l].Dispose();
            // The coarsest level's pooler has kernel 1 (identity); skipping it saves a copy.
            pooled[l] = l == levels.Length - 1 ? features : poolers[l].call(features);
            if (!ReferenceEquals(pooled[l], features)) features.Dispose();
        }
        var joined = cat(pooled, 1);
        foreach (var p in pooled) p.Dispose();
        var moments = aggregator.call(joined);
        return scope.MoveToOuter(moments);
    }
}
