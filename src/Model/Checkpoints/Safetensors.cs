using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>A validated safetensors header: entries, metadata and where the data starts.</summary>
public sealed record SafetensorsHeader(
    string Path, IReadOnlyList<SafetensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);

/// <summary>
/// Reader and writer for the safetensors format (8-byte little-endian header length, a JSON header,
/// then raw little-endian tensor bytes). Everything is checked before any tensor is allocated: header
/// size, dtypes, shapes against byte ranges, ranges against the file size, no overlaps. Nothing is
/// ever executed, unlike a pickle.
/// </summary>
public static class Safetensors
{
    /// <summary>Headers above this size are refused (real headers are a few hundred KB at most).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16, ["I8"] = ScalarType.Int8, ["U8"] = ScalarType.Byte, ["BOOL"] = ScalarType.Bool,
    };

    public static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"dtype {t} cannot be stored in safetensors."),
    };

    private static string DTypeName(ScalarType t) =>
        DTypes.FirstOrDefault(kv => kv.Value == t).Key ?? throw new NotSupportedException($"dtype {t} cannot be stored in safetensors.");

    public static SafetensorsHeader ReadHeader(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found.", path);
        using var stream = File.OpenRead(path);
        return ReadHeader(stream, path);
    }

    private static SafetensorsHeader ReadHeader(Stream stream, string path)
    {
        long fileLength = stream.Length;
        Span<byte> lenBytes = stackalloc byte[8];
        if (fileLength < 8 || stream.Read(lenBytes) != 8)
            throw Bad(path, "too short to be a safetensors file");
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > fileLength)
            throw Bad(path, $"header length {headerLength} is invalid for a file of {fileLength} bytes (is this a safetensors file?)");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + headerLength, dataLength = fileLength - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw Bad(path, $"header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Bad(path, "header is not a JSON object");
            var entries = new List<SafetensorsEntry>();
            var metadata = new Dictionary<string, string>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw Bad(path, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries.Add(ParseEntry(prop, path, dataLength));
            }
            var sorted = entries.OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Begin < sorted[i - 1].End)
                    throw Bad(path, $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
            return new SafetensorsHeader(path, entries, metadata, dataStart);
        }
    }

    private static SafetensorsEntry ParseEntry(JsonProperty prop, string path, long dataLength)
    {
        try
        {
            var v = prop.Value;
            string dtypeName = v.GetProperty("dtype").GetString() ?? "";
            if (!DTypes.TryGetValue(dtypeName, out var dtype))
                throw Bad(path, $"tensor '{prop.Name}' has unsupported dtype '{dtypeName}'");
            long[] shape = v.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var offs = v.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offs.Length != 2 || shape.Any(d => d < 0))
                throw Bad(path, $"tensor '{prop.Name}' has a malformed shape or data_offsets");
            var entry = new SafetensorsEntry(prop.Name, dtype, shape, offs[0], offs[1]);
            long expected = checked(entry.ElementCount * ElementSize(dtype));
            if (offs[0] < 0 || offs[1] < offs[0] || offs[1] > dataLength || offs[1] - offs[0] != expected)
                throw Bad(path, $"tensor '{prop.Name}' (shape [{string.Join(", ", shape)}], {dtypeName}) has byte range [{offs[0]}, {offs[1]}) that does not fit its shape or the file");
            return entry;
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            throw Bad(path, $"tensor '{prop.Name}' has a malformed header entry ({e.Message})");
        }
    }

    /// <summary>Loads tensors (all, or those <paramref name="include"/> accepts) onto the CPU.</summary>
    public static Dictionary<string, Tensor> Load(string path, Func<string, bool>? include = null)
    {
        var header = ReadHeader(path);
        var result = new Dictionary<string, Tensor>();
        using var stream = File.OpenRead(path);
        foreach (var e in header.Entries)
        {
            if (include is not null && !include(e.Name)) continue;
            var t = empty(e.Shape, e.DType);
            if (e.End > e.Begin)
            {
                var buffer = new byte[e.End - e.Begin];
                stream.Seek(header.DataStart + e.Begin, SeekOrigin.Begin);
                stream.ReadExactly(buffer);
                t.bytes = buffer;
            }
            result[e.Name] = t;
        }
        return result;
    }

    /// <summary>
    /// Writes tensors (any device; copied to CPU, contiguous) with optional string metadata, in the
    /// order given. Writes the file in place; callers that need atomicity write to a temp path and rename.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long n = t.numel() * ElementSize(t.dtype);
            header[name] = new { dtype = DTypeName(t.dtype), shape = t.shape, data_offsets = new[] { offset, offset + n } };
            offset += n;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8; // keep tensor data 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
        stream.Write(len);
        stream.Write(headerBytes);
        foreach (var (_, t) in list)
        {
            using var cpu = t.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        }
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Replaces the metadata of a safetensors file, keeping every tensor (order, dtype, shape, bytes), atomically:
    /// the new file is written beside it and renamed over it, so a crash leaves the old file or the new one.
    /// </summary>
    public static void RewriteMetadata(string path, IReadOnlyDictionary<string, string> metadata)
    {
        var old = ReadHeader(path);
        var header = new Dictionary<string, object>();
        if (metadata.Count > 0) header["__metadata__"] = metadata;
        foreach (var e in old.Entries)
            header[e.Name] = new { dtype = DTypeName(e.DType), shape = e.Shape, data_offsets = new[] { e.Begin, e.End } };
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8;
        string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.tmp-{Environment.ProcessId}");
        try
        {
            using (var src = File.OpenRead(path))
            using (var dst = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(json.Length + pad));
                dst.Write(len);
                dst.Write(json);
                for (int i = 0; i < pad; i++) dst.WriteByte((byte)' ');
                src.Position = old.DataStart;
                src.CopyTo(dst);
                dst.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static InvalidDataException Bad(string path, string what) => new($"{path}: {what}.");
}
