using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>A Python dict (or collections.OrderedDict) with string keys, for <see cref="TorchPickleWriter"/>.</summary>
public sealed record PickleMapping(IReadOnlyList<KeyValuePair<string, object?>> Items, bool Ordered = false);

/// <summary>
/// Writes the pickle that <c>torch.save</c> (protocol 2) writes for a tree of dicts, strings, numbers and
/// tensors, opcode for opcode as Python's pickler emits it: memo puts for every string, global, tuple and
/// reduced object, memo gets for repeats, SETITEMS in batches of 1000. Tensors become
/// <c>torch._utils._rebuild_tensor_v2</c> calls on a persistent storage id; their bytes are not written
/// here but collected in <see cref="Storages"/> (key = index) for the archive's <c>data/&lt;key&gt;</c> records.
/// Only globals that <c>torch.load(weights_only=True)</c> allows are ever named.
/// </summary>
public sealed class TorchPickleWriter
{
    private const int BatchSize = 1000;   // pickle._BATCHSIZE
    private readonly MemoryStream _out = new();
    private readonly Dictionary<string, int> _memo = new(StringComparer.Ordinal);
    private readonly List<Tensor> _storages = [];
    // Objects that are memoized but never referenced again (tuples, dicts, reduced objects) still take a memo slot.
    private int _anonymous;

    /// <summary>The tensors in storage-key order ("0", "1", ...); each is its own storage.</summary>
    public IReadOnlyList<Tensor> Storages => _storages;

    public byte[] Write(object? root)
    {
        _out.WriteByte(0x80);   // PROTO 2
        _out.WriteByte(2);
        Save(root);
        _out.WriteByte((byte)'.');
        return _out.ToArray();
    }

    private void Save(object? value)
    {
        switch (value)
        {
            case null: _out.WriteByte((byte)'N'); break;
            case bool b: _out.WriteByte(b ? (byte)0x88 : (byte)0x89); break;
            case int i: SaveLong(i); break;
            case long l: SaveLong(l); break;
            case double d:
                _out.WriteByte((byte)'G');
                Span<byte> be = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(be, d);
                _out.Write(be);
                break;
            case string s: SaveString(s); break;
            case PickleMapping m: SaveMapping(m); break;
            case Tensor t: SaveTensor(t); break;
            default: throw new ArgumentException($"cannot pickle a {value.GetType().Name} (only dicts, strings, numbers and tensors).");
        }
    }

    private void SaveLong(long v)
    {
        if (v is >= 0 and <= 0xff) { _out.WriteByte((byte)'K'); _out.WriteByte((byte)v); return; }
        if (v is >= 0 and <= 0xffff) { _out.WriteByte((byte)'M'); WriteUInt16((ushort)v); return; }
        if (v is >= int.MinValue and <= int.MaxValue) { _out.WriteByte((byte)'J'); WriteInt32((int)v); return; }
        var bytes = new BigInteger(v).ToByteArray();   // minimal little-endian two's complement, as pickle's encode_long
        _out.WriteByte(0x8a);   // LONG1
        _out.WriteByte((byte)bytes.Length);
        _out.Write(bytes);
    }

    private void SaveString(string s)
    {
        if (Get("s:" + s)) return;
        var utf8 = Encoding.UTF8.GetBytes(s);
        _out.WriteByte((byte)'X');   // BINUNICODE
        WriteInt32(utf8.Length);
        _out.Write(utf8);
        Put("s:" + s);
    }

    private void SaveGlobal(string module, string name)
    {
        if (Get("g:" + module + "." + name)) return;
        _out.WriteByte((byte)'c');
        _out.Write(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));
        Put("g:" + module + "." + name);
    }

    private void SaveMapping(PickleMapping m)
    {
        if (m.Ordered)
        {
            // OrderedDict.__reduce__: the class called with no arguments, then SETITEMS.
            SaveGlobal("collections", "OrderedDict");
            _out.WriteByte((byte)')');   // EMPTY_TUPLE
            _out.WriteByte((byte)'R');   // REDUCE
        }
        else
            _out.WriteByte((byte)'}');   // EMPTY_DICT
        PutAnonymous();
        for (int start = 0; start < m.Items.Count; start += BatchSize)
        {
            int n = Math.Min(BatchSize, m.Items.Count - start);
            if (n > 1) _out.WriteByte((byte)'(');
            for (int i = start; i < start + n; i++)
            {
                SaveString(m.Items[i].Key);
                Save(m.Items[i].Value);
            }
            _out.WriteByte(n > 1 ? (byte)'u' : (byte)'s');
        }
    }

    private void SaveTensor(Tensor t)
    {
        if (t.device_type != DeviceType.CPU) throw new ArgumentException("tensors to pickle must be on the CPU.");
        string key = _storages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _storages.Add(t);
        SaveGlobal("torch._utils", "_rebuild_tensor_v2");
        _out.WriteByte((byte)'(');
        // The persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel).
        _out.WriteByte((byte)'(');
        SaveString("storage");
        SaveGlobal("torch", StorageType(t.dtype));
        SaveString(key);
        SaveString("cpu");
        SaveLong(t.numel());
        _out.WriteByte((byte)'t');
        PutAnonymous();
        _out.WriteByte((byte)'Q');   // BINPERSID
        SaveLong(0);                 // storage offset
        SaveTuple(t.shape);
        SaveTuple(ContiguousStrides(t.shape));
        Save(false);                 // requires_grad
        SaveGlobal("collections", "OrderedDict");   // backward hooks: an empty OrderedDict
        _out.WriteByte((byte)')');
        _out.WriteByte((byte)'R');
        PutAnonymous();
        _out.WriteByte((byte)'t');   // the 6 arguments
        PutAnonymous();
        _out.WriteByte((byte)'R');
        PutAnonymous();
    }

    private void SaveTuple(long[] items)
    {
        if (items.Length == 0) { _out.WriteByte((byte)')'); return; }   // the empty tuple is not memoized
        if (items.Length > 3) _out.WriteByte((byte)'(');
        foreach (var v in items) SaveLong(v);
        _out.WriteByte(items.Length switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' });
        PutAnonymous();
    }

    private static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(shape[i], 1);
        }
        return strides;
    }

    public static string StorageType(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "FloatStorage",
        ScalarType.Float64 => "DoubleStorage",
        ScalarType.Float16 => "HalfStorage",
        ScalarType.BFloat16 => "BFloat16Storage",
        ScalarType.Int64 => "LongStorage",
        ScalarType.Int32 => "IntStorage",
        ScalarType.Int16 => "ShortStorage",
        ScalarType.Int8 => "CharStorage",
        ScalarType.Byte => "ByteStorage",
        ScalarType.Bool => "BoolStorage",
        _ => throw new NotSupportedException($"dtype {dtype} has no torch storage type."),
    };

    private bool Get(string key)
    {
        if (!_memo.TryGetValue(key, out int index)) return false;
        if (index < 256) { _out.WriteByte((byte)'h'); _out.WriteByte((byte)index); }
        else { _out.WriteByte((byte)'j'); WriteInt32(index); }
        return true;
    }

    private void Put(string key)
    {
        int index = _memo.Count + _anonymous;
        _memo[key] = index;
        WritePut(index);
    }

    private void PutAnonymous() => WritePut(_memo.Count + _anonymous++);

    private void WritePut(int index)
    {
        if (index < 256) { _out.WriteByte((byte)'q'); _out.WriteByte((byte)index); }
        else { _out.WriteByte((byte)'r'); WriteInt32(index); }
    }

    private void WriteUInt16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _out.Write(b);
    }

    private void WriteInt32(int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        _out.Write(b);
    }
}
