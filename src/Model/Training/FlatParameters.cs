using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>Where one parameter lives inside its group's flat buffer.</summary>
public sealed record FlatSlot(string Name, long Offset, long Numel, long[] Shape, long[] Strides);

/// <summary>
/// All trainable parameters of one dtype as views into one 1-D buffer (<see cref="Data"/>), and their
/// gradients as views into a second one (<see cref="Grad"/>) with the same arrangement, so element i
/// of <see cref="Data"/> and element i of <see cref="Grad"/> always belong to the same weight.
/// </summary>
public sealed class FlatGroup : IDisposable
{
    internal FlatGroup(ScalarType dtype, Tensor data, Tensor grad, IReadOnlyList<FlatSlot> slots, IReadOnlyList<Parameter> parameters)
    {
        DType = dtype;
        Data = data;
        Grad = grad;
        Slots = slots;
        Parameters = parameters;
    }

    public ScalarType DType { get; }
    public Tensor Data { get; }
    public Tensor Grad { get; }
    public IReadOnlyList<FlatSlot> Slots { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    public long Numel => Data.numel();

    public void Dispose()
    {
        Data.Dispose();
        Grad.Dispose();
    }
}

/// <summary>
/// Re-homes the trainable parameters of some modules into one contiguous buffer per dtype, and points
/// every parameter's <c>.grad</c> at a view of one flat gradient buffer. Zeroing gradients, clipping,
/// the NaN/Inf check, EMA, optimizer updates and checkpoint snapshots then cost a handful of kernels
/// instead of several per parameter (TorchSharp's optimizers loop over parameters in C#).
///
/// How it works: under <c>no_grad</c>, each parameter is <c>set_()</c> to a strided view of the flat
/// buffer (so the module, its state dict and autograd keep using the same Parameter object), and its
/// gradient is set to the matching view of the gradient buffer. Autograd accumulates into an existing
/// gradient in place (<c>grad += new</c> when not building a double-backward graph), so backward
/// writes straight into the flat gradient buffer. The views stay valid as long as nobody replaces the
/// parameters: do not call <c>module.to(...)</c>, <c>zero_grad(set_to_none)</c> or load a state dict by
/// assignment after flattening (copying values in with <c>copy_</c> is fine).
///
/// With <c>channelsLast</c>, 4-D weights get channels-last strides inside their slot, which is what
/// cuDNN prefers for channels-last activations; the gradient view gets the same strides.
/// </summary>
public sealed class FlatParameters : IDisposable
{
    private FlatParameters(IReadOnlyList<FlatGroup> groups) => Groups = groups;

    /// <summary>One group per dtype, in the order the dtypes first appear.</summary>
    public IReadOnlyList<FlatGroup> Groups { get; }

    public long Numel => Groups.Sum(g => g.Numel);

    /// <summary>The only group; throws when the parameters have more than one dtype.</summary>
    public FlatGroup Single => Groups.Count == 1
        ? Groups[0]
        : throw new InvalidOperationException($"expected parameters of one dtype, found {string.Join(", ", Groups.Select(g => g.DType))}.");

    /// <summary>Flattens the parameters that require grad (shared parameters are taken once).</summary>
    public static FlatParameters Create(IEnumerable<(string name, Parameter parameter)> parameters, bool channelsLast = false) =>
        Create(parameters, _ => channelsLast);

    /// <summary>As above, with channels-last strides for the 4-D parameters <paramref name="channelsLast"/> names.</summary>
    public static FlatParameters Create(IEnumerable<(string name, Parameter parameter)> parameters, Func<string, bool> channelsLast)
    {
        var seen = new HashSet<IntPtr>();
        var trainable = new List<(string name, Parameter p)>();
        foreach (var (name, p) in parameters)
            if (p.requires_grad && seen.Add(p.Handle))
                trainable.Add((name, p));
        if (trainable.Count == 0)
            throw new ArgumentException("no trainable parameters to flatten.");
        var device = trainable[0].p.device;
        foreach (var (name, p) in trainable)
            if (p.device.type != device.type || p.device.index != device.index)
                throw new ArgumentException($"parameter '{name}' is on {p.device}, others on {device}: move the modules to one device before flattening.");

        var groups = new List<FlatGroup>();
        foreach (var byType in trainable.GroupBy(t => t.p.dtype))
            groups.Add(Flatten(byType.Key, byType.ToList(), device, channelsLast));
        return new FlatParameters(groups);
    }

    private static FlatGroup Flatten(ScalarType dtype, List<(string name, Parameter p)> items, Device device, Func<string, bool> channelsLast)
    {
        var slots = new List<FlatSlot>(items.Count);
        long offset = 0;
        foreach (var (name, p) in items)
        {
            long n = p.numel();
            slots.Add(new FlatSlot(name, offset, n, p.shape, DenseStrides(p.shape, channelsLast(name))));
            // Slots start at multiples of 8 elements (16+ bytes, as vectorised kernels like), the same
            // for every dtype, so an fp32 master and a bf16 compute copy share one arrangement and
            // convert with a single copy. The gaps stay zero.
            offset += RoundUp(n, SlotAlignment);
        }
        var data = zeros(offset, dtype, device);
        var grad = zeros(offset, dtype, device);
        using (no_grad())
        {
            for (int i = 0; i < items.Count; i++)
            {
                var (_, p) = items[i];
                var s = slots[i];
                using var view = data.as_strided(s.Shape, s.Strides, s.Offset);
                view.copy_(p);
                p.set_(view);
                using var gradView = grad.as_strided(s.Shape, s.Strides, s.Offset);
                p.grad = gradView;
            }
        }
        return new FlatGroup(dtype, data, grad, slots, items.Select(t => t.p).ToList());
    }

    /// <summary>Contiguous (row-major) strides, or channels-last strides (N,H,W,C order) for 4-D shapes.</summary>
    public static long[] DenseStrides(long[] shape, bool channelsLast)
    {
        var strides = new long[shape.Length];
        if (channelsLast && shape.Length == 4)
        {
            long c = shape[1], h = shape[2], w = shape[3];
            strides[1] = 1;
            strides[3] = c;
            strides[2] = c * w;
            strides[0] = c * w * h;
            return strides;
        }
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = acc;
            acc *= Math.Max(shape[d], 1);
        }
        return strides;
    }

    private static long RoundUp(long n, long m) => (n + m - 1) / m * m;

    /// <summary>Slot alignment in elements (dtype-independent, see <see cref="Flatten"/>).</summary>
    public const long SlotAlignment = 8;

    /// <summary>Zeroes every gradient: one kernel per dtype.</summary>
    public void ZeroGrad()
    {
        foreach (var g in Groups)
            g.Grad.zero_();
    }

    public void Dispose()
    {
        foreach (var g in Groups)
            g.Dispose();
    }
}
