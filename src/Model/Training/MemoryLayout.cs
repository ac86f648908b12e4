using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Channels-last (NHWC in memory, NCHW in shape) helpers. TorchSharp 0.107 declares memory_format but
/// exposes no contiguous(memory_format) or to(memory_format), so layouts are made with the permute
/// trick. Convolutions keep the layout they are given, so channels-last input plus channels-last
/// weights keep a whole network channels-last.
/// </summary>
public static class MemoryLayout
{
    /// <summary>The same N×C×H×W tensor with channels-last strides (a copy; non-4-D tensors get an alias).</summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return x.alias();
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var s = x.stride();
        var n = x.shape;
        return s[1] == 1 && s[3] == n[1] && s[2] == n[1] * n[3];
    }

    /// <summary>
    /// Re-lays the 4-D parameters and buffers of a FROZEN module (e.g. LPIPS) as channels-last, in
    /// place (set_ under no_grad, so the module keeps its Parameter objects). Trainable modules get
    /// channels-last slots from <see cref="FlatParameters"/> instead.
    /// </summary>
    public static void ConvertFrozen(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.requires_grad)
                throw new ArgumentException($"parameter '{name}' is trainable: use FlatParameters for channels-last trainable weights.");
            if (p.dim() == 4)
                using (var cl = ToChannelsLast(p)) p.set_(cl);
        }
        ConvertBuffers(module);
    }

    /// <summary>Re-lays a module's 4-D buffers (e.g. the fixed DWT filters) as channels-last, in place.</summary>
    public static void ConvertBuffers(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (_, b) in module.named_buffers())
            if (b.dim() == 4)
                using (var cl = ToChannelsLast(b)) b.set_(cl);
    }
}
