using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Encoder;

/// <summary>
/// The reference encoder UNet (spec 3.2): no spatial resampling; 1x1 convs change the width between
/// "levels". Layout (state-dict indices): init_conv 3x3; down_blocks[i] = nrb ResidualBlocks (each
/// output saved as a skip) then a 1x1 conv at index nrb; mid_block = nrb ResidualBlocks at the widest
/// width; up_blocks[j] = a 1x1 conv at index 0 then nrb ResidualBlocks(2h -> h) on concat(x, skip);
/// conv_out 1x1.
/// </summary>
public sealed class UNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d init_conv;
    private readonly ModuleList<ModuleList<nn.Module<Tensor, Tensor>>> down_blocks;
    private readonly ModuleList<ResidualBlock> mid_block;
    private readonly ModuleList<ModuleList<nn.Module<Tensor, Tensor>>> up_blocks;
    private readonly Conv2d conv_out;

    private readonly int _resblocks;

    public UNet(int inChannels, int outChannels, int channels, IReadOnlyList<int> mult, int resblocks) : base(nameof(UNet))
    {
        if (mult.Count < 1) throw new ArgumentException("UNet needs at least one width multiplier.");
        _resblocks = resblocks;
        long[] widths = mult.Select(m => (long)channels * m).ToArray();

        init_conv = nn.Conv2d(inChannels, widths[0], 3, padding: 1);

        down_blocks = new ModuleList<ModuleList<nn.Module<Tensor, Tensor>>>();
        for (int i = 0; i < widths.Length - 1; i++)
        {
            var level = new ModuleList<nn.Module<Tensor, Tensor>>();
            for (int k = 0; k < resblocks; k++)
                level.Add(new ResidualBlock(widths[i], widths[i]));
            level.Add(nn.Conv2d(widths[i], widths[i + 1], 1));
            down_blocks.Add(level);
        }

        mid_block = new ModuleList<ResidualBlock>();
        for (int k = 0; k < resblocks; k++)
            mid_block.Add(new ResidualBlock(widths[^1], widths[^1]));

        up_blocks = new ModuleList<ModuleList<nn.Module<Tensor, Tensor>>>();
        long previous = widths[^1];
        for (int i = widths.Length - 2; i >= 0; i--)
        {
            var level = new ModuleList<nn.Module<Tensor, Tensor>> { nn.Conv2d(previous, widths[i], 1) };
            for (int k = 0; k < resblocks; k++)
                level.Add(new ResidualBlock(2 * widths[i], widths[i]));
            up_blocks.Add(level);
            previous = widths[i];
        }

        conv_out = nn.Conv2d(widths[0], outChannels, 1);
        RegisterComponents();
    }

    /// <summary>The dtype of the weights (follows module.to(dtype)).</summary>
    public ScalarType WeightDtype => conv_out.weight!.dtype;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Intermediates are released as soon as they are consumed (autograd keeps what it needs),
        // so inference memory stays near the live set instead of the whole forward's history.
        var skips = new Stack<Tensor>();
        var h = init_conv.call(x);
        foreach (var level in down_blocks)
        {
            for (int k = 0; k < _resblocks; k++)
            {
                var next = level[k].call(h);
                if (k == 0) h.Dispose(); // h was not a skip (init_conv or a 1x1 width conv output)
                skips.Push(next);
                h = next;
            }
            h = level[_resblocks].call(h); // skips keep the previous h
        }
        foreach (var block in mid_block)
            h = Replace(h, block.call(h));
        foreach (var level in up_blocks)
        {
            h = Replace(h, level[0].call(h));
            for (int k = 1; k <= _resblocks; k++)
            {
                var skip = skips.Pop();
                var joined = cat([h, skip], 1);
                h.Dispose();
                skip.Dispose();
                h = Replace(joined, level[k].call(joined));
            }
        }
        h = Replace(h, conv_out.call(h));
        return scope.MoveToOuter(h);
    }

    private static Tensor Replace(Tensor old, Tensor next)
    {
        old.Dispose();
        return next;
    }
}
