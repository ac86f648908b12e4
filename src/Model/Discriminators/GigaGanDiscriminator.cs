using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// GigaGAN-style multi-level discriminator (spec 7.2), PyTorch spectral norm on every conv.
/// For image size S there are log2(S) - 2 levels; level l halves the size (k4 s2 p2 convs, so 256
/// gives 129, 65, 33, 17, 9, 5) and has min(base / (S / 2^(l+1)), max) channels. A level is
/// MultiConv, BN/Identity, LReLU(0.1), conv_blocks x [SN-Conv3x3, BN/Identity, LReLU(0.1)], and a
/// SpatialTransformer where the nominal size is in attention_resolutions. Level 0 (every level
/// with msio) feeds a predictor + 1x1 skip; a final k2 s2 conv makes 2 x 2, flattened into a
/// 4C-channel 1 x 1 map for the last predictor + skip.
/// Returns the logit maps unflattened; the reference flattens them into one vector, which gives the
/// global logit a weight of 1/16642 under a plain mean. Only the build size is accepted (the
/// reference's flatten step requires it too).
/// Keys: blocks.{l}.{i}.*, blocks.{L}.0.* (final conv), predictors.{j}.main.*, predskip.{j}.* with
/// the last one predskip.{J}.0.*.
/// </summary>
public sealed class GigaGanDiscriminator : nn.Module<Tensor, Tensor>, IDiscriminator
{
    private readonly ModuleList<Sequential> blocks;
    private readonly ModuleList<SimplePredictor> predictors;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> predskip;
    private readonly int _levels;

    public GigaGanDiscriminator(GigaGanConfig config) : base(nameof(GigaGanDiscriminator))
    {
        config.EnsureValid();
        Config = config;
        _levels = (int)Math.Round(Math.Log2(config.ImageSize)) - 2;
        blocks = new ModuleList<Sequential>();
        predictors = new ModuleList<SimplePredictor>();
        predskip = new ModuleList<nn.Module<Tensor, Tensor>>();
        long size = config.ImageSize;
        long lastCh = -1;
        for (int level = 0; level < _levels; level++)
        {
            size /= 2;
            long ch = Math.Min(config.BaseChannels / size, config.MaxChannels);
            var layers = new List<nn.Module<Tensor, Tensor>>
            {
                new MultiConv(3, level == 0 ? ch : lastCh, ch),
                Norm(config, ch),
                nn.LeakyReLU(0.1),
            };
            for (int i = 0; i < config.ConvBlocks; i++)
            {
                layers.Add(new TorchSnConv2d(ch, ch, 3, padding: 1, bias: config.ConvBias));
                layers.Add(Norm(config, ch));
                layers.Add(nn.LeakyReLU(0.1));
            }
            if (config.AttentionResolutions.Contains((int)size))
                layers.Add(new SpatialTransformer(ch, ch / config.HeadDim, config.HeadDim, depth: 2, config.AttnResGain));
            blocks.Add(nn.Sequential(layers));
            if (config.Msio || level == 0)
            {
                predictors.Add(new SimplePredictor(ch, config.PredLayers, config.UseBn));
                predskip.Add(new TorchSnConv2d(ch, 1, 1));
            }
            lastCh = ch;
        }
        long finalCh = Math.Min(config.BaseChannels / size, config.MaxChannels);
        blocks.Add(nn.Sequential(new TorchSnConv2d(lastCh, finalCh, 2, stride: 2), nn.LeakyReLU(0.1)));
        predictors.Add(new SimplePredictor(4 * finalCh, config.PredLayers, config.UseBn));
        predskip.Add(nn.Sequential(new TorchSnConv2d(4 * finalCh, 1, 1)));
        RegisterComponents();
    }

    private static nn.Module<Tensor, Tensor> Norm(GigaGanConfig config, long ch) =>
        config.UseBn ? nn.BatchNorm2d(ch) : nn.Identity();

    public GigaGanConfig Config { get; }

    public string Type => "gigagan";

    public nn.Module<Tensor, Tensor> Module => this;

    public IReadOnlyList<Tensor> Logits(Tensor images)
    {
        DiscriminatorOutputs.RequireImages(images, "gigagan discriminator");
        if (images.shape[2] != Config.ImageSize || images.shape[3] != Config.ImageSize)
            throw new ArgumentException(
                $"gigagan discriminator: built for {Config.ImageSize} x {Config.ImageSize} images (image_size), got {images.shape[2]} x {images.shape[3]}.");
        using var scope = NewDisposeScope();
        var logits = new List<Tensor>();
        var x = images;
        int head = 0;
        for (int level = 0; level < _levels; level++)
        {
            x = blocks[level].call(x);
            if (Config.Msio || level == 0)
            {
                logits.Add(predictors[head].call(x) + predskip[head].call(x));
                head++;
            }
        }
        x = blocks[_levels].call(x);
        // 2 x 2 x C -> 4C x 1 x 1, channel-major as the reference's rearrange 'b c h w -> b (c h w) 1 1'.
        x = x.reshape(x.shape[0], -1, 1, 1);
        logits.Add(predictors[head].call(x) + predskip[head].call(x));
        return [.. logits.Select(l => scope.MoveToOuter(l))];
    }

    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(DiscriminatorOutputs.Concatenate(Logits(images), images.shape[0]));
    }
}
