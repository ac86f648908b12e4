using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Decoder;

/// <summary>One resolution level of the decoder: `block` (ResnetBlocks) then, except at the finest level, `upsample`.</summary>
public sealed class DecoderLevel : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<SmcResnetBlock> block;
    private readonly Upsample? upsample;

    public DecoderLevel(long inChannels, long outChannels, int blocks, double dropout, bool withUpsample) : base(nameof(DecoderLevel))
    {
        block = new ModuleList<SmcResnetBlock>();
        for (int i = 0; i < blocks; i++)
            block.Add(new SmcResnetBlock(i == 0 ? inChannels : outChannels, outChannels, dropout));
        upsample = withUpsample ? new Upsample(outChannels) : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var b in block)
            h = Release(h, x, b.call(h));
        if (upsample is not null)
            h = Release(h, x, upsample.call(h));
        // With zero blocks and no upsampling the level is the identity; return a fresh handle.
        return scope.MoveToOuter(ReferenceEquals(h, x) ? x.alias() : h);
    }

    /// <summary>Frees an intermediate once the next one exists; never the caller's input.</summary>
    internal static Tensor Release(Tensor old, Tensor input, Tensor next)
    {
        if (!ReferenceEquals(old, input)) old.Dispose();
        return next;
    }
}
