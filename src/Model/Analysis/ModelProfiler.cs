using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Analysis;

/// <summary>Parameters and multiply-accumulates (per sample) of one top-level child, or of the model's own parameters.</summary>
public sealed record ModuleProfile(string Name, long Parameters, long Macs);

/// <summary>How the MACs were measured.</summary>
public enum ProfileMethod
{
    /// <summary>A forward at batch 0: shapes flow through every layer but no arithmetic is done.</summary>
    ShapeOnly,
    /// <summary>A real forward at batch 1 (used when a model cannot run an empty batch).</summary>
    RealForward,
}

/// <summary>
/// A model's parameter and per-sample MAC counts per top-level child and in total.
/// <see cref="Uncounted"/> lists conv/linear layers that hold weights but never ran as modules during
/// the forward (their MACs are missing unless an enclosing module implements <see cref="IMacCounted"/>).
/// </summary>
public sealed record ModelProfile(IReadOnlyList<ModuleProfile> Children, long Parameters, long Macs,
    IReadOnlyList<string> Uncounted, ProfileMethod Method, string? Note = null);

/// <summary>
/// Counts parameters, and MACs by forward hooks: built-in Conv1d/2d/3d, ConvTranspose1d/2d/3d and
/// Linear layers are counted from their weight shape and output (or input) size; a module that
/// implements <see cref="IMacCounted"/> is counted by that method alone and its children are skipped.
/// Elementwise work (norms, activations, pooling, upsampling) is not counted, as in the usual MAC tables.
/// <para>
/// libtorch's C++ meta device has no convolution kernel, so "no compute" is done differently: the
/// forward first runs at batch 0, where every layer still sees its full per-sample shape but does no
/// arithmetic, and MACs are computed per sample from the shapes (dimension 0 = batch). IMacCounted
/// modules then receive shape-only stand-ins (meta tensors with batch 1). If the model cannot run an
/// empty batch (e.g. BatchNorm in training mode), the profiler falls back to a real forward at batch 1
/// and says so in <see cref="ModelProfile.Method"/> and <see cref="ModelProfile.Note"/>.
/// </para>
/// </summary>
public static class ModelProfiler
{
    public static long CountParameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <param name="model">The model; its top-level children get one row each.</param>
    /// <param name="forward">Runs one forward pass of <paramref name="model"/> at the given batch size
    /// (any signature, any outputs: the delegate creates its input and disposes what it gets back).</param>
    /// <param name="shapeOnly">Try the batch-0 forward first (default); false forces a real batch-1 forward.</param>
    public static ModelProfile Profile(nn.Module model, Action<long> forward, bool shapeOnly = true)
    {
        if (shapeOnly)
        {
            try
            {
                return Run(model, forward, ProfileMethod.ShapeOnly, null);
            }
            catch (Exception e)
            {
                string note = $"the batch-0 shape-only forward failed ({FirstLine(e.Message)}); counted with a real forward at batch 1";
                return Run(model, forward, ProfileMethod.RealForward, note);
            }
        }
        return Run(model, forward, ProfileMethod.RealForward, null);
    }

    private static ModelProfile Run(nn.Module model, Action<long> forward, ProfileMethod method, string? note)
    {
        var children = model.named_children().ToList();
        if (children.Count == 0)
            children = [(model.GetName(), model)];
        var macs = new long[children.Count];
        var fired = new HashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        var countable = new List<(string Name, nn.Module Module)>();
        var removers = new List<Action>();
        bool shapeOnly = method == ProfileMethod.ShapeOnly;
        try
        {
            for (int i = 0; i < children.Count; i++)
            {
                int slot = i;
                Attach(children[i].Item2, children[i].Item1, shapeOnly, countable, removers, fired, n => macs[slot] += n);
            }
            using (no_grad())
                forward(shapeOnly ? 0 : 1);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }

        var rows = children.Select((c, i) => new ModuleProfile(c.Item1, CountParameters(c.Item2), macs[i])).ToList();
        long total = CountParameters(model);
        long own = total - rows.Sum(r => r.Parameters);
        if (own != 0 && !ReferenceEquals(children[0].Item2, model))
            rows.Add(new ModuleProfile("(own parameters)", own, 0));
        var uncounted = countable.Where(c => !fired.Contains(c.Module)).Select(c => c.Name).ToList();
        return new ModelProfile(rows, total, macs.Sum(), uncounted, method, note);
    }

    private static void Attach(nn.Module module, string name, bool shapeOnly, List<(string, nn.Module)> countable,
        List<Action> removers, HashSet<nn.Module> fired, Action<long> add)
    {
        // Elements per sample: at batch 0 from the shape without the batch dimension; at batch 1 all of them.
        long Elements(Tensor t) => shapeOnly ? t.shape.Skip(1).Aggregate(1L, (a, b) => a * b) : t.numel();

        Func<Tensor, Tensor, long>? count = module switch
        {
            IMacCounted custom => shapeOnly
                ? (input, output) => { using var i = Standin(input); using var o = Standin(output); return custom.CountMacs(i, o); }
                : custom.CountMacs,
            ConvolutionTranspose transposed => (input, _) => Elements(input) * KernelVolume(transposed.weight),
            Conv1d or Conv2d or Conv3d => (_, output) => Elements(output) * KernelVolume(((Convolution)module).weight),
            Linear linear => (_, output) => Elements(output) * linear.weight.shape[1],
            _ => null,
        };
        if (count is not null)
        {
            countable.Add((name, module));
            if (module is nn.Module<Tensor, Tensor> hookable)
            {
                var handle = hookable.register_forward_hook((m, input, output) =>
                {
                    fired.Add(m);
                    add(count(input, output));
                    return null!; // keep the output unchanged
                });
                removers.Add(handle.remove);
            }
            return; // a counted module's children are not counted again
        }
        foreach (var (childName, child) in module.named_children())
            Attach(child, name + "." + childName, shapeOnly, countable, removers, fired, add);
    }

    /// <summary>A meta tensor with the same shape as <paramref name="t"/> but batch 1: shapes only, no data.</summary>
    private static Tensor Standin(Tensor t)
    {
        var shape = t.shape.ToArray();
        if (shape.Length > 0) shape[0] = 1;
        return empty(shape, t.dtype, META);
    }

    // weight [out, in/groups, k...] for convs, [in, out/groups, k...] for transposed convs:
    // MACs per output (resp. input) element = weight.shape[1] * prod(k).
    private static long KernelVolume(Tensor weight) => weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b);

    private static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
