using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Wavelets;

/// <summary>Which Haar convention to follow (spec 2.1 vs 2.2).</summary>
public enum HaarConvention
{
    /// <summary>open-litevae: bands [LL, diff-along-W, diff-along-H, HH], no per-level scaling.</summary>
    Reference,
    /// <summary>Paper (ptwt): bands [LL, diff-along-H, diff-along-W, HH], level l divided by 2^l.</summary>
    Paper,
}

/// <summary>
/// Multi-level 2-D Haar DWT as a fixed stride-2 convolution, and its exact inverse. Level l
/// (1-based) has 4C channels at H/2^l x W/2^l, band-major (channel = band * C + colour), and level
/// l+1 transforms level l's LL band. The transform always runs in fp32 without autograd, whatever
/// the dtype of the input or of the model around it; results come back in the dtype the caller asks for.
/// </summary>
public sealed class HaarDwt : nn.Module<Tensor, Tensor[]>
{
    // Weight [4C, C, 2, 2]: output channel band*C + c sees only input channel c. A dense conv with
    // this block-diagonal weight yields band-major channels directly (a grouped conv would give
    // colour-major order and need a transposing copy); the extra zero MACs are negligible at C = 3.
    // Non-persistent: it is derived, never part of a checkpoint.
    private readonly Tensor filters;

    private readonly int _channels;
    private readonly int _levels;
    private readonly HaarConvention _convention;

    public HaarDwt(int channels, int levels, HaarConvention convention = HaarConvention.Reference) : base(nameof(HaarDwt))
    {
        if (channels < 1) throw new ArgumentException($"HaarDwt channels must be at least 1 (got {channels}).");
        if (levels < 1) throw new ArgumentException($"HaarDwt levels must be at least 1 (got {levels}).");
        _channels = channels;
        _levels = levels;
        _convention = convention;
        filters = BuildFilters(channels, convention);
        register_buffer(nameof(filters), filters, persistent: false);
        RegisterComponents();
    }

    public int Channels => _channels;
    public int Levels => _levels;
    public HaarConvention Convention => _convention;

    /// <summary>The four 2x2 kernels, in this convention's band order; rows index H, columns W.</summary>
    public static float[][,] Kernels(HaarConvention convention)
    {
        var ll = new[,] { { 0.5f, 0.5f }, { 0.5f, 0.5f } };
        var diffW = new[,] { { 0.5f, -0.5f }, { 0.5f, -0.5f } };
        var diffH = new[,] { { 0.5f, 0.5f }, { -0.5f, -0.5f } };
        var hh = new[,] { { 0.5f, -0.5f }, { -0.5f, 0.5f } };
        return convention == HaarConvention.Reference ? [ll, diffW, diffH, hh] : [ll, diffH, diffW, hh];
    }

    private static Tensor BuildFilters(int channels, HaarConvention convention)
    {
        var kernels = Kernels(convention);
        var w = new float[4 * channels * channels * 4];
        for (int band = 0; band < 4; band++)
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < 2; p++)
                    for (int q = 0; q < 2; q++)
                        w[(((band * channels + c) * channels + c) * 2 + p) * 2 + q] = kernels[band][p, q];
        return tensor(w, [4L * channels, channels, 2, 2], float32);
    }

    /// <summary>All levels, in the input's dtype.</summary>
    public override Tensor[] forward(Tensor x) => Forward(x, x.dtype);

    /// <summary>All levels (index 0 = level 1, the finest), returned in <paramref name="outputDtype"/>.</summary>
    public Tensor[] Forward(Tensor x, ScalarType outputDtype)
    {
        CheckInput(x);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = Weight(x.device);
        var results = new Tensor[_levels];
        var current = x.to(float32);
        for (int l = 0; l < _levels; l++)
        {
            var level = nn.functional.conv2d(current, w, strides: [2, 2]);
            current = level.narrow(1, 0, _channels); // LL band feeds the next level
            var output = _convention == HaarConvention.Paper ? level / (double)(1 << (l + 1)) : level;
            results[l] = output.to(outputDtype);
        }
        scope.MoveToOuter(results);
        return results;
    }

    /// <summary>
    /// Inverse of <see cref="Forward"/>: rebuilds the image from the coarsest level's four bands and
    /// the detail bands of every finer level (the finer levels' LL bands are redundant and unused).
    /// Runs in fp32; returns the dtype of <paramref name="levels"/>[0].
    /// </summary>
    public Tensor Inverse(IReadOnlyList<Tensor> levels)
    {
        if (levels.Count != _levels)
            throw new ArgumentException($"HaarDwt.Inverse expects {_levels} levels, got {levels.Count}.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = Weight(levels[0].device);
        Tensor? ll = null;
        for (int l = _levels - 1; l >= 0; l--)
        {
            var level = levels[l].to(float32);
            if (level.dim() != 4 || level.shape[1] != 4 * _channels)
                throw new ArgumentException($"HaarDwt.Inverse: level {l + 1} must be N x {4 * _channels} x h x w, got [{string.Join(", ", level.shape)}].");
            if (_convention == HaarConvention.Paper)
                level = level * (double)(1 << (l + 1));
            if (ll is not null)
                level = cat([ll, level.narrow(1, _channels, 3 * _channels)], 1);
            // The 4x4 band matrix is symmetric and orthogonal, so the transposed conv with the same
            // weight is the exact inverse.
            ll = nn.functional.conv_transpose2d(level, w, strides: [2, 2]);
        }
        return scope.MoveToOuter(ll!.to(levels[0].dtype));
    }

    // TorchSharp 0.107's module.to() skips non-persistent buffers (named_buffers leaves them out), so
    // `filters` stays on the CPU. Copying it per call would be a blocking host-to-device copy, i.e. a GPU
    // sync inside every training step; keep one copy per device instead.
    private Tensor? _deviceFilters;

    private Tensor Weight(Device device)
    {
        if (_deviceFilters is null || _deviceFilters.device_type != device.type || _deviceFilters.device_index != device.index)
        {
            _deviceFilters?.Dispose();
            _deviceFilters = filters.to(float32, device).DetachFromDisposeScope();
        }
        return _deviceFilters.alias();
    }

    private void CheckInput(Tensor x)
    {
        long factor = 1L << _levels;
        if (x.dim() != 4 || x.shape[1] != _channels)
            throw new ArgumentException($"expected images N x {_channels} x H x W, got [{string.Join(", ", x.shape)}].");
        if (x.shape[2] % factor != 0 || x.shape[3] % factor != 0)
            throw new ArgumentException($"image height and width must be multiples of {factor} (2^{_levels} for {_levels} wavelet levels), got {x.shape[2]} x {x.shape[3]}.");
        if (!is_floating_point(x))
            throw new ArgumentException($"expected floating-point images in [-1, 1], got dtype {x.dtype}.");
    }
}
