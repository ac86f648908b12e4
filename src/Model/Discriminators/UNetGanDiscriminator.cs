using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Discriminators;

/// <summary>
/// U-Net GAN discriminator (spec 7.3), the reference's 256 architecture with BigGAN layers: six
/// downsampling DBlocks (x D_ch: 1, 2, 4, 8, 8, 16), a global head on the bottleneck
/// (sum over H, W of ReLU, then SN-Linear -> N x 1), six upsampling GBlock2s fed with the skip
/// features, and a plain 1x1 conv giving per-pixel logits N x 1 x H x W.
/// Unlike the reference, nothing is tied to the build resolution: any input whose sides are
/// multiples of 64 works (the reference views the output to its build size and accepts only 256).
/// Keys: blocks.{i}.0.{conv1,conv2,conv_sc}.*, blocks.{i}.1.{theta,phi,g,o,gamma} where attention
/// is on, blocks.12.{weight,bias} (the final conv), linear.* (an unused head, kept so that counts
/// and checkpoints match), linear_middle.*.
/// </summary>
public sealed class UNetGanDiscriminator : nn.Module<Tensor, Tensor>, IDiscriminator
{
    /// <summary>Down-path widths in units of D_ch, and the resolution each block outputs at a 256 input.</summary>
    private static readonly int[] DownMultipliers = [1, 2, 4, 8, 8, 16];
    /// <summary>Up-path (in, out) widths in units of D_ch, skip concatenation included.</summary>
    private static readonly (int In, int Out)[] UpMultipliers = [(16, 8), (16, 8), (16, 4), (8, 2), (4, 1), (2, 1)];
    public const int SizeMultiple = 64;

    private readonly ModuleList<nn.Module> blocks;
    private readonly BigGanSnLinear linear;
    private readonly BigGanSnLinear linear_middle;
    // Typed views of the blocks list (arrays are not registered as components).
    private readonly nn.Module<Tensor, Tensor>[][] _stages;

    /// <param name="initialize">false skips the orthogonal init (weights about to be loaded, or only counted).</param>
    public UNetGanDiscriminator(UNetGanConfig config, bool initialize = true) : base(nameof(UNetGanDiscriminator))
    {
        config.EnsureValid();
        Config = config;
        long ch = config.DCh;
        var stages = new List<nn.Module<Tensor, Tensor>[]>();
        long inCh = 3;
        for (int i = 0; i < DownMultipliers.Length; i++)
        {
            long outCh = ch * DownMultipliers[i];
            var stage = new List<nn.Module<Tensor, Tensor>> { new DBlock(inCh, outCh, preactivation: i > 0) };
            // The reference allows attention after the first five down blocks only.
            if (i < 5 && config.AttentionResolutions.Contains(128 >> i))
                stage.Add(new SelfAttention(outCh));
            stages.Add([.. stage]);
            inCh = outCh;
        }
        foreach (var (inMul, outMul) in UpMultipliers)
            stages.Add([new GBlock2(ch * inMul, ch * outMul)]);
        _stages = [.. stages];
        blocks = new ModuleList<nn.Module>();
        foreach (var stage in _stages)
            blocks.Add(new ModuleList<nn.Module<Tensor, Tensor>>(stage));
        blocks.Add(nn.Conv2d(ch, 1, 1));
        linear = new BigGanSnLinear(ch, 1);
        linear_middle = new BigGanSnLinear(16 * ch, 1);
        RegisterComponents();
        if (initialize)
            InitOrthogonal();
    }

    public UNetGanConfig Config { get; }

    public string Type => "unetgan";

    public nn.Module<Tensor, Tensor> Module => this;

    /// <summary>BigGAN's 'ortho' init: every conv and linear weight, the plain final conv included.</summary>
    private void InitOrthogonal()
    {
        using var _ = no_grad();
        foreach (var (_, m) in named_modules())
        {
            switch (m)
            {
                case BigGanSnConv2d c: nn.init.orthogonal_(c.Weight); break;
                case BigGanSnLinear l: nn.init.orthogonal_(l.Weight); break;
                case Conv2d c: nn.init.orthogonal_(c.weight!); break;
            }
        }
    }

    public IReadOnlyList<Tensor> Logits(Tensor images)
    {
        DiscriminatorOutputs.RequireImages(images, "unetgan discriminator");
        if (images.shape[2] % SizeMultiple != 0 || images.shape[3] % SizeMultiple != 0)
            throw new ArgumentException(
                $"unetgan discriminator: image sides must be multiples of {SizeMultiple} (six 2x downsamplings), got {images.shape[2]} x {images.shape[3]}.");
        using var scope = NewDisposeScope();
        var skips = new List<Tensor>();
        var h = images;
        Tensor? global = null;
        int down = DownMultipliers.Length;
        for (int i = 0; i < _stages.Length; i++)
        {
            // Up blocks after the first take the matching down block's output as extra channels.
            if (i > down)
                h = cat([h, skips[2 * down - 1 - i]], 1);
            foreach (var module in _stages[i])
                h = module.call(h);
            if (i < down - 1)
                skips.Add(h);
            if (i == down - 1)
                global = linear_middle.call(F.relu(h).sum([2, 3]));
        }
        var pixels = ((Conv2d)blocks[_stages.Length]).call(h);
        return [scope.MoveToOuter(pixels), scope.MoveToOuter(global!)];
    }

    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(DiscriminatorOutputs.Concatenate(Logits(images), images.shape[0]));
    }
}
