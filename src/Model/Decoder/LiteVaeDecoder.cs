using LiteVae.Model.Configs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Decoder;

/// <summary>
/// The reference LiteVAE decoder (spec 5.2): conv_in, a mid stack of num_res_blocks + 1 SMC
/// ResnetBlocks (no attention), up levels executed from the coarsest (index n-1) to the finest
/// (index 0) with num_res_blocks + 1 blocks each and x2 upsampling after all but the finest, then
/// conv_norm (an SMC 3x3), SiLU and conv_out. The output is unbounded (no tanh, no clamp).
/// </summary>
public sealed class LiteVaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly ModuleList<SmcResnetBlock> mid;
    private readonly ModuleList<DecoderLevel> up;
    private readonly SelfModulatedConv2d conv_norm;
    private readonly Conv2d conv_out;

    private readonly DecoderConfig _config;

    public LiteVaeDecoder(DecoderConfig config) : base(nameof(LiteVaeDecoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        var mult = config.ChannelMult;
        int blocks = config.NumResBlocks + 1;
        long blockIn = (long)config.Channels * mult[^1];

        conv_in = nn.Conv2d(config.ZChannels, blockIn, 3, padding: 1);
        mid = new ModuleList<SmcResnetBlock>();
        for (int i = 0; i < blocks; i++)
            mid.Add(new SmcResnetBlock(blockIn, blockIn, config.Dropout));

        // Built from the coarsest level down, stored finest-first (index = resolution level), as in LDM.
        var levels = new DecoderLevel[mult.Count];
        for (int i = mult.Count - 1; i >= 0; i--)
        {
            long blockOut = (long)config.Channels * mult[i];
            levels[i] = new DecoderLevel(blockIn, blockOut, blocks, config.Dropout, withUpsample: i != 0);
            blockIn = blockOut;
        }
        up = new ModuleList<DecoderLevel>(levels);

        conv_norm = new SelfModulatedConv2d(blockIn, blockIn, 3);
        conv_out = nn.Conv2d(blockIn, config.OutChannels, 3, padding: 1);
        RegisterComponents();
    }

    public DecoderConfig Config => _config;

    /// <summary>The dtype of the weights (follows module.to(dtype)).</summary>
    public ScalarType WeightDtype => conv_in.weight!.dtype;

    /// <summary>The last layer's weight (the usual handle for an adaptive GAN weight).</summary>
    public Parameter LastLayerWeight => conv_out.weight!;

    /// <summary>Images N x out x 2^(levels-1)h x 2^(levels-1)w from latents N x z x h x w.</summary>
    public override Tensor forward(Tensor z)
    {
        if (z.dim() != 4 || z.shape[1] != _config.ZChannels)
            throw new ArgumentException($"decoder expects latents N x {_config.ZChannels} x h x w, got [{string.Join(", ", z.shape)}].");
        using var scope = NewDisposeScope();
        var h = conv_in.call(z);
        foreach (var block in mid)
            h = DecoderLevel.Release(h, z, block.call(h));
        for (int i = up.Count - 1; i >= 0; i--)
            h = DecoderLevel.Release(h, z, up[i].call(h));
        h = DecoderLevel.Release(h, z, conv_norm.call(h));
        h = Activations.SiluOwned(h);
        h = DecoderLevel.Release(h, z, conv_out.call(h));
        return scope.MoveToOuter(h);
    }
}
