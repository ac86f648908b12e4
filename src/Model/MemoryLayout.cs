using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model;

/// <summary>
/// channels_last (NHWC in memory, NCHW shape) for 4-D tensors and module weights. TorchSharp 0.107 has
/// no contiguous(memory_format), so the layout is made with permute + contiguous + permute back, which
/// gives exactly PyTorch's channels_last strides; libtorch then keeps that layout through convs.
/// </summary>
public static class MemoryLayout
{
    /// <summary>True when the tensor's memory order is N, H, W, C (strides of size-1 dims do not matter).</summary>
    public static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4) return false;
        var s = t.stride();
        var n = t.shape;
        long[] expected = [n[1] * n[2] * n[3], 1, n[3] * n[1], n[1]];
        for (int d = 0; d < 4; d++)
            if (n[d] > 1 && s[d] != expected[d]) return false;
        return true;
    }

    /// <summary>A channels_last copy of a 4-D tensor (or a fresh handle when it already is one).</summary>
    public static Tensor ToChannelsLast(Tensor t)
    {
        if (t.dim() != 4)
            throw new ArgumentException($"channels_last needs a 4-D tensor, got [{string.Join(", ", t.shape)}].");
        if (IsChannelsLast(t)) return t.alias();
        using var nhwc = t.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// Re-lays every 4-D parameter of <paramref name="module"/> out as channels_last, in place (same
    /// Parameter objects, so optimizers and state dicts are unaffected). Apply after moving the module
    /// to its device and dtype: TorchSharp's module.to() makes new, contiguous parameters.
    /// </summary>
    public static void ConvertToChannelsLast(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var p in module.parameters())
        {
            if (p.dim() != 4 || IsChannelsLast(p)) continue;
            using var cl = ToChannelsLast(p);
            p.set_(cl);
        }
    }
}
