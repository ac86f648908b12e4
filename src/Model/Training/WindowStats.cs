using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Sums of device scalars (losses, grad norms) over a log window, kept on the device: adding costs
/// one tiny kernel and no synchronisation. <see cref="Flush"/> brings all means to the host with one
/// transfer and starts a new window.
/// </summary>
public sealed class WindowStats : IDisposable
{
    private readonly Dictionary<string, (Tensor sum, long count)> _sums = new();
    private readonly List<string> _order = [];

    public bool IsEmpty => _sums.Count == 0;

    public void Add(string name, Tensor value)
    {
        using var _ = no_grad();
        using var v = value.detach().to_type(ScalarType.Float32);
        if (_sums.TryGetValue(name, out var e))
        {
            e.sum.add_(v);
            _sums[name] = (e.sum, e.count + 1);
        }
        else
        {
            _sums[name] = (v.clone().DetachFromDisposeScope(), 1);
            _order.Add(name);
        }
    }

    public void AddAll(IReadOnlyDictionary<string, Tensor> values, string prefix = "")
    {
        foreach (var (k, v) in values)
            Add(prefix + k, v);
    }

    /// <summary>Means of everything added since the last flush, in the order names first appeared.</summary>
    public List<KeyValuePair<string, double>> Flush()
    {
        if (_sums.Count == 0) return [];
        float[] values;
        using (var scope = NewDisposeScope())
            values = stack(_order.Select(n => _sums[n].sum).ToArray()).cpu().data<float>().ToArray();
        var result = _order.Select((n, i) => new KeyValuePair<string, double>(n, values[i] / (double)_sums[n].count)).ToList();
        Clear();
        return result;
    }

    private void Clear()
    {
        foreach (var (sum, _) in _sums.Values) sum.Dispose();
        _sums.Clear();
        _order.Clear();
    }

    public void Dispose() => Clear();
}
