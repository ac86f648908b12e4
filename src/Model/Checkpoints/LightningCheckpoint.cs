using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>What <see cref="LightningCheckpoint.Read"/> found: the state dict's tensors and the few scalars a conversion reports.</summary>
public sealed class LightningImport(Dictionary<string, Tensor> stateDict, long? globalStep, long? epoch, string? lightningVersion,
    string? modelJson, IReadOnlyList<string> otherEntries) : IDisposable
{
    /// <summary>Every tensor of <c>state_dict</c>, under its own key, contiguous on the CPU, dtype kept.</summary>
    public Dictionary<string, Tensor> StateDict { get; } = stateDict;
    public long? GlobalStep { get; } = globalStep;
    public long? Epoch { get; } = epoch;
    public string? LightningVersion { get; } = lightningVersion;
    /// <summary>Our model config JSON, when the file is one we exported (<see cref="ModelConfigKey"/>).</summary>
    public string? ModelJson { get; } = modelJson;
    /// <summary>The other top-level entries (optimizer_states, hyper_parameters, ...), by name, not read.</summary>
    public IReadOnlyList<string> OtherEntries { get; } = otherEntries;

    public void Dispose()
    {
        foreach (var t in StateDict.Values) t.Dispose();
    }
}

/// <summary>
/// PyTorch Lightning <c>.ckpt</c> files (spec 11.3): a torch.save dict whose <c>state_dict</c> holds the
/// weights under the reference's keys (encoder.*, decoder.*, quantizer.*, the discriminator under loss.*,
/// EMA under encoder_ema./decoder_ema.). Reading takes only <c>state_dict</c> and never runs pickle code;
/// the other entries (optimizer_states, hyper_parameters, callbacks) may hold arbitrary Python objects,
/// which are unpickled as inert placeholders and dropped. Writing produces a file that
/// <c>torch.load(path, weights_only=True)</c> accepts: the torch 1.13 zip layout with a protocol-2 pickle of
/// {epoch, global_step, pytorch-lightning_version, state_dict (an OrderedDict), litevae.model}.
/// </summary>
public static class LightningCheckpoint
{
    public const string StateDictKey = "state_dict";
    /// <summary>The Lightning version the reference was trained with (1.x); written so Lightning's loaders accept the file.</summary>
    public const string WrittenLightningVersion = "1.9.0";
    /// <summary>Top-level entry holding our model config JSON (Lightning ignores entries it does not know).</summary>
    public const string ModelConfigKey = Configs.ModelConfigJson.MetadataKey;

    public static LightningImport Read(string path)
    {
        long? step = null, epoch = null;
        string? version = null, model = null;
        var others = new List<string>();
        var tensors = PyTorchFile.Read(path, opaqueGlobals: true, root =>
        {
            if (root is not PickleDict top)
                throw new InvalidDataException($"{path}: holds a {PyTorchFile.Describe(root)}, not a Lightning checkpoint (a dict with 'state_dict').");
            object? stateDict = null;
            foreach (var (k, v) in top.Items)
            {
                switch (k as string)
                {
                    case StateDictKey: stateDict = v; break;
                    case "global_step" when v is long s: step = s; break;
                    case "epoch" when v is long e: epoch = e; break;
                    case "pytorch-lightning_version" when v is string s: version = s; break;
                    case ModelConfigKey when v is string s: model = s; break;
                    default: others.Add(k?.ToString() ?? "None"); break;
                }
            }
            // A bare state dict (torch.save(model.state_dict())) is accepted too: its values are the tensors.
            if (stateDict is null && top.Items.Any(kv => kv.Value is PyTorchFile.TensorRef))
            {
                others.Clear();
                stateDict = top;
            }
            if (stateDict is not PickleDict sd)
                throw new InvalidDataException(stateDict is null
                    ? $"{path}: no 'state_dict' entry (top-level entries: {string.Join(", ", top.Items.Select(kv => kv.Key))}); not a Lightning checkpoint."
                    : $"{path}: 'state_dict' is a {PyTorchFile.Describe(stateDict)}, not a dict of tensors.");
            var refs = new Dictionary<string, PyTorchFile.TensorRef>();
            Walk(sd, "", refs, path);
            return refs;
        });
        return new LightningImport(tensors, step, epoch, version, model, others);
    }

    private static void Walk(PickleDict dict, string prefix, Dictionary<string, PyTorchFile.TensorRef> refs, string path)
    {
        foreach (var (k, v) in dict.Items)
        {
            string key = prefix + (k?.ToString() ?? "None");
            switch (v)
            {
                case PyTorchFile.TensorRef t: refs[key] = t; break;
                case PickleDict inner: Walk(inner, key + ".", refs, path); break;
                case OpaqueObject or OpaqueGlobal:
                    // Placeholders are fine elsewhere in the file, never where weights are read.
                    throw new InvalidDataException($"{path}: state_dict entry '{key}' is a {PyTorchFile.Describe(v)}, not a tensor; " +
                        "re-save the checkpoint with plain tensors in its state_dict.");
                default: break;   // a scalar beside the tensors carries no weights
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="stateDict"/> (CPU or not; copied contiguous, dtype and shape kept) as a Lightning
    /// checkpoint at <paramref name="path"/>, atomically (a temp file renamed over it).
    /// </summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, Tensor>> stateDict, long globalStep, long epoch, string? modelJson)
    {
        var cpu = new List<KeyValuePair<string, object?>>();
        var owned = new List<Tensor>();
        string temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            foreach (var (k, t) in stateDict)
            {
                using var scope = NewDisposeScope();
                var c = scope.MoveToOuter(t.detach().cpu().contiguous());
                owned.Add(c);
                cpu.Add(new(k, c));
            }
            var items = new List<KeyValuePair<string, object?>>
            {
                new("epoch", epoch),
                new("global_step", globalStep),
                new("pytorch-lightning_version", WrittenLightningVersion),
                new(StateDictKey, new PickleMapping(cpu, Ordered: true)),
            };
            if (modelJson is not null) items.Add(new(ModelConfigKey, modelJson));
            var pickler = new TorchPickleWriter();
            byte[] pkl = pickler.Write(new PickleMapping(items));
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var zip = new TorchZipWriter(file);
                zip.WriteRecord("data.pkl", pkl);
                // torch writes storages in the string order of their keys ("0", "1", "10", "11", ..., "2").
                var storages = pickler.Storages.Select((t, i) => (Key: i.ToString(System.Globalization.CultureInfo.InvariantCulture), Tensor: t))
                    .OrderBy(s => s.Key, StringComparer.Ordinal);
                foreach (var (key, t) in storages)
                    zip.WriteRecord("data/" + key, [t.numel() == 0 ? [] : t.bytes.ToArray()]);
                zip.WriteRecord("version", "3\n"u8);
                zip.Finish();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
