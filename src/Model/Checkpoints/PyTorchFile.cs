using System.IO.Compression;
using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>
/// Reads the tensors of a PyTorch <c>torch.save</c> file (a state dict) without executing any pickle
/// code. Both layouts are supported: the zip archive (PyTorch ≥ 1.6) and the older "legacy" stream of
/// pickles followed by raw storages (PyTorch 0.1.10 – 1.5), which is what torchvision's VGG16, the
/// LPIPS linear heads and pytorch-fid's Inception weights still use. Only dicts, lists, tuples,
/// scalars, strings and tensors are accepted; nested dicts are flattened into dotted keys.
/// </summary>
public static class PyTorchFile
{
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");
    private const long LegacyProtocol = 1001;

    /// <summary>Loads every tensor (or those <paramref name="include"/> accepts) onto the CPU, contiguous.</summary>
    public static Dictionary<string, Tensor> Load(string path, Func<string, bool>? include = null) =>
        Read(path, opaqueGlobals: false, root => Flatten(root, path, include));

    /// <summary>
    /// Unpickles the file and loads the tensors <paramref name="select"/> picks out of the unpickled root.
    /// With <paramref name="opaqueGlobals"/>, globals outside the allow-list become <see cref="OpaqueGlobal"/>
    /// placeholders instead of stopping the load (still nothing is imported or executed); the selector must
    /// then refuse placeholders in the part it reads.
    /// </summary>
    internal static Dictionary<string, Tensor> Read(string path, bool opaqueGlobals, Func<object?, Dictionary<string, TensorRef>> select)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found.", path);
        using var file = File.OpenRead(path);
        var head = new byte[512];
        int n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        file.Position = 0;
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
        {
            try { return LoadZip(file, path, Resolver(opaqueGlobals), select); }
            catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: broken zip archive ({e.Message}); the file is probably truncated.", e);
            }
        }
        if (n >= 262 && System.Text.Encoding.ASCII.GetString(head, 257, 5) == "ustar")
            throw new InvalidDataException($"{path}: this is PyTorch's tar format from before 2017, which is not supported; " +
                "load it once in Python and save it again with torch.save(state_dict, path).");
        if (n >= 2 && head[0] == 0x80)
            return LoadLegacy(file, path, Resolver(opaqueGlobals), select);
        throw new InvalidDataException($"{path}: not a PyTorch weights file (neither a zip archive nor a pickle stream).");
    }

    // ---- zip format: archive/data.pkl + archive/data/<key> per storage -------------------------------

    private static Dictionary<string, Tensor> LoadZip(FileStream file, string path, Func<string, string, object?> resolve,
        Func<object?, Dictionary<string, TensorRef>> select)
    {
        using var zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
            ?? throw new InvalidDataException($"{path}: a zip archive without data.pkl is not a torch.save file (a TorchScript archive? export its state_dict instead).");
        string prefix = pkl.FullName[..(pkl.FullName.Length - "data.pkl".Length)];
        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null)
        {
            using var r = new StreamReader(byteOrder.Open());
            if (r.ReadToEnd().Trim() != "little")
                throw new InvalidDataException($"{path}: big-endian tensors are not supported.");
        }
        var storages = new Dictionary<string, StorageRef>();
        object? root;
        using (var ms = new MemoryStream())
        {
            using (var s = pkl.Open()) s.CopyTo(ms);
            ms.Position = 0;
            root = new RestrictedUnpickler(ms, path, resolve, Call, pid => Persistent(pid, storages, path)).Load();
        }
        var refs = select(root);
        var data = new Dictionary<string, Tensor>();
        try
        {
            foreach (var key in refs.Values.Select(t => t.Storage.Key).Distinct())
            {
                var st = storages[key];
                var entry = zip.GetEntry($"{prefix}data/{key}")
                    ?? throw new InvalidDataException($"{path}: storage '{key}' is missing from the archive (truncated file?).");
                long bytes = st.Numel * ElementSize(st.DType, path);
                if (entry.Length != bytes)
                    throw new InvalidDataException($"{path}: storage '{key}' has {entry.Length} bytes, expected {bytes} (corrupt file?).");
                var t = empty(st.Numel, st.DType);
                using (var s = entry.Open()) ReadInto(s, t, path);
                data[key] = t;
            }
            return Materialize(refs, data, path);
        }
        finally
        {
            foreach (var t in data.Values) t.Dispose();
        }
    }

    // ---- legacy format: magic, protocol, sys_info, the object, storage keys, then raw storages ------

    private static Dictionary<string, Tensor> LoadLegacy(FileStream file, string path, Func<string, string, object?> resolve,
        Func<object?, Dictionary<string, TensorRef>> select)
    {
        object? Plain() => new RestrictedUnpickler(file, path, (_, _) => null, (_, _) => throw new InvalidDataException($"{path}: unexpected call in the file header."), _ => null).Load();
        var magic = Plain();
        if (!(magic is BigInteger m && m == LegacyMagic))
            throw new InvalidDataException($"{path}: not a PyTorch file (bad magic number).");
        if (Plain() is not long protocol || protocol != LegacyProtocol)
            throw new InvalidDataException($"{path}: unsupported PyTorch legacy protocol version.");
        if (Plain() is PickleDict sysInfo && sysInfo.Items.Any(kv => Equals(kv.Key, "little_endian") && Equals(kv.Value, false)))
            throw new InvalidDataException($"{path}: big-endian tensors are not supported.");

        var storages = new Dictionary<string, StorageRef>();
        var root = new RestrictedUnpickler(file, path, resolve, Call, pid => Persistent(pid, storages, path)).Load();
        if (Plain() is not List<object?> keys)
            throw new InvalidDataException($"{path}: the storage key list is missing (truncated file?).");

        var refs = select(root);
        var needed = refs.Values.Select(t => t.Storage.RootKey).ToHashSet();
        var data = new Dictionary<string, Tensor>();
        try
        {
            foreach (var keyObj in keys)
            {
                string key = keyObj as string ?? throw new InvalidDataException($"{path}: malformed storage key list.");
                if (!storages.TryGetValue(key, out var st))
                    throw new InvalidDataException($"{path}: storage '{key}' is listed but never used.");
                var header = new byte[8];
                try { file.ReadExactly(header); }
                catch (EndOfStreamException) { throw new InvalidDataException($"{path}: file ends before storage '{key}' (truncated download?)."); }
                long numel = BitConverter.ToInt64(header);
                long bytes = numel * ElementSize(st.DType, path);
                if (numel != st.Numel || file.Position + bytes > file.Length)
                    throw new InvalidDataException($"{path}: storage '{key}' should hold {st.Numel} elements but the file says {numel} " +
                        $"or ends early (truncated download?).");
                if (!needed.Contains(key))
                {
                    file.Seek(bytes, SeekOrigin.Current); // e.g. VGG's 400 MB classifier, never used here
                    continue;
                }
                var t = empty(numel, st.DType);
                ReadInto(file, t, path);
                data[key] = t;
            }
            return Materialize(refs, data, path);
        }
        finally
        {
            foreach (var t in data.Values) t.Dispose();
        }
    }

    // ---- shared pieces -------------------------------------------------------------------------------

    /// <summary>A storage named by a persistent id; a legacy "view" is a slice of a root storage.</summary>
    internal sealed record StorageRef(string Key, string RootKey, ScalarType DType, long Numel, long ViewOffset);

    internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Stride);

    private sealed record DTypeGlobal(ScalarType DType);

    private static readonly Dictionary<string, ScalarType> StorageTypes = new()
    {
        ["DoubleStorage"] = ScalarType.Float64, ["FloatStorage"] = ScalarType.Float32, ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16, ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8, ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
    };

    private static readonly HashSet<string> AllowedCalls =
    [
        "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
    ];

    private static Func<string, string, object?> Resolver(bool opaqueGlobals) =>
        opaqueGlobals ? (m, n) => ResolveGlobal(m, n) ?? new OpaqueGlobal(m, n) : ResolveGlobal;

    private static object? ResolveGlobal(string module, string name)
    {
        // Storages saved from a GPU are named torch.cuda.*Storage; they load onto the CPU like the rest.
        if ((module == "torch" || module == "torch.cuda") && StorageTypes.TryGetValue(name, out var dt)) return new DTypeGlobal(dt);
        string full = $"{module}.{name}";
        return AllowedCalls.Contains(full) ? new PickleGlobal(module, name) : null;
    }

    private static object? Call(object? callable, object?[] args)
    {
        if (callable is OpaqueGlobal og) return new OpaqueObject(og);
        if (callable is OpaqueObject oo) return new OpaqueObject(oo.Type);
        if (callable is not PickleGlobal g) throw new InvalidDataException("a call to something that is not an allowed function");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                // Python 3 passes no arguments and adds the items with SETITEMS; Python 2 (the oldest
                // torchvision files) passes them as one list of [key, value] pairs.
                var dict = new PickleDict();
                if (args is [List<object?> pairs])
                    foreach (var pair in pairs)
                    {
                        var kv = pair switch { List<object?> l => l.ToArray(), PickleTuple tp => tp.Items, _ => null };
                        if (kv is not { Length: 2 }) throw new InvalidDataException("OrderedDict items are not [key, value] pairs");
                        dict.Set(kv[0], kv[1]);
                    }
                return dict;
            case "torch._utils._rebuild_tensor":       // (storage, offset, size, stride)
            case "torch._utils._rebuild_tensor_v2":    // (+ requires_grad, backward_hooks[, metadata])
                if (args.Length < 4 || args[0] is not StorageRef st)
                    throw new InvalidDataException($"{g}: unexpected arguments");
                return new TensorRef(st, Int(args[1]), Ints(args[2]), Ints(args[3]));
            case "torch._utils._rebuild_parameter":    // (data, requires_grad, backward_hooks)
                return args.Length >= 1 && args[0] is TensorRef t ? t : throw new InvalidDataException($"{g}: unexpected arguments");
            default:
                throw new InvalidDataException($"call to {g} is not allowed");
        }
    }

    private static StorageRef Persistent(object? pid, Dictionary<string, StorageRef> storages, string path)
    {
        // ('storage', storage_type, key, location, numel[, view_metadata])
        if (pid is not PickleTuple { Items: var p } || p.Length < 5 || p[0] as string != "storage" || p[1] is not DTypeGlobal dt || p[2] is not string key)
            throw new InvalidDataException($"{path}: unsupported persistent id (only tensor storages are allowed).");
        long numel = Int(p[4]);
        if (numel < 0) throw new InvalidDataException($"{path}: storage '{key}' has a negative size.");
        if (!storages.TryGetValue(key, out var root))
            storages[key] = root = new StorageRef(key, key, dt.DType, numel, 0);
        if (p.Length >= 6 && p[5] is PickleTuple { Items: [string viewKey, var offset, var size] })
        {
            long off = Int(offset), len = Int(size);
            if (off < 0 || off + len > root.Numel) throw new InvalidDataException($"{path}: storage view '{viewKey}' lies outside '{key}'.");
            return new StorageRef(viewKey, key, dt.DType, len, off);
        }
        return root;
    }

    private static long Int(object? o) => o is long l ? l : throw new InvalidDataException($"expected an integer, found {o?.GetType().Name ?? "None"}");

    private static long[] Ints(object? o) => o switch
    {
        PickleTuple t => t.Items.Select(Int).ToArray(),
        List<object?> l => l.Select(Int).ToArray(),
        _ => throw new InvalidDataException("expected a tuple of integers"),
    };

    internal static Dictionary<string, TensorRef> Flatten(object? root, string path, Func<string, bool>? include)
    {
        if (root is not PickleDict dict)
            throw new InvalidDataException($"{path}: the file holds a {Describe(root)}, not a state dict.");
        var result = new Dictionary<string, TensorRef>();
        void Walk(PickleDict d, string prefix)
        {
            foreach (var (k, v) in d.Items)
            {
                string key = prefix + (k?.ToString() ?? "None");
                if (v is TensorRef t) { if (include is null || include(key)) result[key] = t; }
                else if (v is PickleDict inner) Walk(inner, key + ".");
                // Other values (step counters, strings, hyper-parameters) are not weights; skip them.
            }
        }
        Walk(dict, "");
        return result;
    }

    internal static string Describe(object? o) => o switch
    {
        null => "None",
        OpaqueObject x => $"{x.Type} object",
        OpaqueGlobal g => $"reference to {g}",
        PickleTuple => "tuple",
        List<object?> => "list",
        _ => o.GetType().Name,
    };

    private static Dictionary<string, Tensor> Materialize(Dictionary<string, TensorRef> refs, Dictionary<string, Tensor> data, string path)
    {
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, r) in refs)
            {
                var storage = data[r.Storage.RootKey];
                long offset = r.Storage.ViewOffset + r.Offset;
                long last = offset + r.Shape.Zip(r.Stride, (s, st) => s == 0 ? 0 : (s - 1) * st).Sum();
                bool empty = r.Shape.Any(s => s == 0);
                if (r.Stride.Length != r.Shape.Length || r.Shape.Any(s => s < 0) || r.Stride.Any(s => s < 0)
                    || (!empty && (offset < 0 || last >= r.Storage.ViewOffset + r.Storage.Numel)))
                    throw new InvalidDataException($"{path}: tensor '{name}' (shape [{string.Join(", ", r.Shape)}]) lies outside its storage (corrupt file?).");
                using var view = storage.as_strided(r.Shape, r.Stride, empty ? 0 : offset);
                result[name] = view.contiguous().clone();
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    private static void ReadInto(Stream s, Tensor t, string path)
    {
        if (t.numel() == 0) return;
        try { s.ReadExactly(t.bytes); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: file ends inside a tensor (truncated download?)."); }
    }

    private static long ElementSize(ScalarType t, string path) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new InvalidDataException($"{path}: dtype {t} is not supported."),
    };
}
