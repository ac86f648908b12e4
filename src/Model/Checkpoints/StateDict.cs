using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>What a state-dict load matched, and what it could not.</summary>
public sealed record LoadReport(
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> ShapeMismatches)
{
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0;

    public string Describe(int maxPerList = 8)
    {
        static string Part(string label, IReadOnlyList<string> keys, int max) =>
            keys.Count == 0 ? "" : $" {keys.Count} {label}: {string.Join(", ", keys.Take(max))}{(keys.Count > max ? ", ..." : "")}.";
        return $"{Loaded.Count} tensors loaded." + Part("missing", Missing, maxPerList)
            + Part("unexpected", Unexpected, maxPerList) + Part("with the wrong shape", ShapeMismatches, maxPerList);
    }
}

/// <summary>Raised by a strict load; the message lists missing, unexpected and mis-shaped keys.</summary>
public sealed class StateDictMismatchException(string message, LoadReport report) : Exception(message)
{
    public LoadReport Report { get; } = report;
}

/// <summary>Copies named tensors into a module's parameters and buffers, matching by state-dict key.</summary>
public static class StateDict
{
    /// <param name="source">Where the tensors came from (a file path), used in error messages.</param>
    /// <param name="prefix">Only keys under this prefix are considered, with the prefix removed
    /// (e.g. "encoder." to load an encoder out of a whole-autoencoder file).</param>
    /// <param name="only">Only the module's keys (with <paramref name="prefix"/>) it accepts are loaded and
    /// checked; the others are left as they are (e.g. the decoder when only the encoder runs).</param>
    public static LoadReport Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        bool strict = true, string prefix = "", Func<string, bool>? only = null)
    {
        var target = module.state_dict();
        if (only is not null)
        {
            var kept = new Dictionary<string, Tensor>();
            foreach (var (k, v) in target)
                if (only(prefix + k)) kept[k] = v;
            target = kept;
        }
        var loaded = new List<string>();
        var missing = new List<string>();
        var mismatched = new List<string>();
        var seen = new HashSet<string>();
        using (no_grad())
        {
            foreach (var (key, dst) in target)
            {
                if (!tensors.TryGetValue(prefix + key, out var src))
                {
                    missing.Add(prefix + key);
                    continue;
                }
                seen.Add(prefix + key);
                if (!src.shape.SequenceEqual(dst.shape))
                {
                    mismatched.Add($"{prefix + key} (file [{string.Join(", ", src.shape)}], model [{string.Join(", ", dst.shape)}])");
                    continue;
                }
                loaded.Add(prefix + key);
            }
            var unexpected = tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !seen.Contains(k) && (only is null || only(k))).ToList();
            var report = new LoadReport(loaded, missing, unexpected, mismatched);
            if (strict && !report.IsExact)
                throw new StateDictMismatchException($"{source}: weights do not match the model. {report.Describe()}", report);
            // Copy only after validation, so a failed strict load leaves the module untouched.
            foreach (var key in loaded)
                target[key[prefix.Length..]].copy_(tensors[key]);
            return report;
        }
    }

    /// <summary>The module's state dict with a key prefix, ready to save next to other modules.</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> Prefixed(nn.Module module, string prefix) =>
        module.state_dict().Select(kv => new KeyValuePair<string, Tensor>(prefix + kv.Key, kv.Value));
}
