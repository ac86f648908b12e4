using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Turns flat training buffers into named CPU tensors for a checkpoint, and back. A flat buffer is
/// copied to the host in ONE transfer; the named tensors are views of that copy (made contiguous by the
/// writer thread), so the training thread never loops over parameters on the device.
/// Names are state-dict keys, so the files load into PyTorch modules as they are.
/// </summary>
public static class SnapshotTensors
{
    /// <summary>A private CPU copy of a device buffer (always a copy, even on CPU).</summary>
    public static Tensor HostCopy(Tensor t)
    {
        using var d = t.detach();
        return d.to(DeviceType.CPU, copy: true);
    }

    /// <summary>
    /// The module's whole state dict as fp32 CPU tensors named <paramref name="prefix"/> + key: trainable
    /// parameters come from <paramref name="flatWeights"/> (the fp32 master, or an EMA laid out like it),
    /// everything else (frozen parameters, buffers) from the module itself.
    /// </summary>
    /// <param name="owned">Receives the tensors the caller must free (the host copy and converted buffers).</param>
    public static List<KeyValuePair<string, Tensor>> ModuleState(nn.Module module, IReadOnlyList<FlatSlot> slots,
        Tensor flatWeights, string prefix, List<Tensor> owned)
    {
        var host = HostCopy(flatWeights);
        owned.Add(host);
        var bySlot = slots.ToDictionary(s => s.Name);
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (key, value) in module.state_dict())
        {
            Tensor t;
            if (bySlot.TryGetValue(key, out var slot))
                t = MasterWeights.SlotView(host, slot);
            else
            {
                t = HostCopy(value);
                if (t.dtype is ScalarType.BFloat16 or ScalarType.Float16)
                {
                    var wide = t.to_type(ScalarType.Float32);
                    t.Dispose();
                    t = wide;
                }
            }
            result.Add(new(prefix + key, t));
        }
        return result;
    }

    /// <summary>A flat buffer (e.g. an Adam moment) as one named CPU tensor per slot: prefix + slot name.</summary>
    public static List<KeyValuePair<string, Tensor>> PerSlot(Tensor flat, IReadOnlyList<FlatSlot> slots, string prefix, List<Tensor> owned)
    {
        var host = HostCopy(flat);
        owned.Add(host);
        return slots.Select(s => new KeyValuePair<string, Tensor>(prefix + s.Name, MasterWeights.SlotView(host, s))).ToList();
    }

    /// <summary>
    /// Copies named tensors (prefix + slot name) into a flat buffer, one slot at a time. Every slot must
    /// be present with the right shape; the error names the file and the offending keys.
    /// </summary>
    public static void LoadPerSlot(Tensor flat, IReadOnlyList<FlatSlot> slots, IReadOnlyDictionary<string, Tensor> tensors,
        string prefix, string source)
    {
        var missing = slots.Where(s => !tensors.ContainsKey(prefix + s.Name)).Select(s => prefix + s.Name).ToList();
        var wrong = slots.Where(s => tensors.TryGetValue(prefix + s.Name, out var t) && !t.shape.SequenceEqual(s.Shape))
            .Select(s => $"{prefix + s.Name} (file [{string.Join(", ", tensors[prefix + s.Name].shape)}], model [{string.Join(", ", s.Shape)}])").ToList();
        if (missing.Count > 0 || wrong.Count > 0)
            throw new InvalidDataException($"{source}: does not match the model: " +
                (missing.Count > 0 ? $"{missing.Count} missing ({string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}) " : "") +
                (wrong.Count > 0 ? $"{wrong.Count} with the wrong shape ({string.Join(", ", wrong.Take(5))})" : "") + ".");
        using var _ = no_grad();
        foreach (var s in slots)
        {
            using var view = MasterWeights.SlotView(flat, s);
            view.copy_(tensors[prefix + s.Name]);
        }
    }
}
