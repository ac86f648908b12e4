using System.Numerics;
using System.Text;

namespace LiteVae.Model.Checkpoints;

/// <summary>A Python global (module.name) that the unpickler was allowed to resolve.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// A Python global that is not on the caller's allow-list, kept as a name only. Used where a file may
/// hold arbitrary objects next to the part that is read (a Lightning checkpoint's hyper_parameters):
/// nothing is imported or run, and the value can never become a tensor.
/// </summary>
internal sealed record OpaqueGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// What calling or instantiating an <see cref="OpaqueGlobal"/> stands for: a placeholder. Its BUILD state
/// is dropped; items appended or set on it (a list or dict subclass, such as Lightning's AttributeDict)
/// are kept as plain data.
/// </summary>
internal sealed class OpaqueObject(OpaqueGlobal type)
{
    public OpaqueGlobal Type { get; } = type;
    public PickleDict Items { get; } = new();
    public List<object?> ListItems { get; } = [];
}

/// <summary>A Python tuple (kept apart from lists so argument shapes can be checked).</summary>
internal sealed class PickleTuple(object?[] items)
{
    public object?[] Items { get; } = items;
}

/// <summary>A Python dict or OrderedDict, in insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];

    public void Set(object? key, object? value)
    {
        for (int i = 0; i < Items.Count; i++)
            if (Equals(Items[i].Key, key)) { Items[i] = new(key, value); return; }
        Items.Add(new(key, value));
    }
}

/// <summary>
/// A pickle virtual machine that never executes code: it understands the opcodes of protocols 0-5,
/// and a global (module.name) is only accepted if the caller's resolver knows it; calls (REDUCE,
/// NEWOBJ) go to the caller's handler, which builds plain data. Anything else, such as
/// <c>os.system</c> or an arbitrary class, stops the load with an error naming it. This is the same
/// idea as PyTorch's <c>weights_only=True</c> loader.
/// </summary>
internal sealed class RestrictedUnpickler(
    Stream stream,
    string source,
    Func<string, string, object?> resolveGlobal,
    Func<object?, object?[], object?> call,
    Func<object?, object?> persistentLoad)
{
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    /// <summary>Runs until STOP and returns the unpickled object; the stream is left just after STOP.</summary>
    public object? Load()
    {
        while (true)
        {
            int op = stream.ReadByte();
            if (op < 0) throw Bad("the pickle ends before its STOP opcode (truncated file?)");
            switch (op)
            {
                case 0x80: ReadByte(); break;                        // PROTO
                case 0x95: ReadBytes(8); break;                      // FRAME (length only; we read unframed)
                case '.':                                            // STOP
                    if (_stack.Count != 1) throw Bad($"the pickle stopped with {_stack.Count} values on its stack");
                    return _stack[0];
                case '(': _marks.Push(_stack.Count); break;          // MARK
                case ')': Push(new PickleTuple([])); break;          // EMPTY_TUPLE
                case 't': Push(new PickleTuple(PopMark().ToArray())); break;
                case 0x85: Push(new PickleTuple([Pop()])); break;    // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; }
                case ']': Push(new List<object?>()); break;          // EMPTY_LIST
                case 'l': Push(PopMark()); break;                    // LIST
                case 'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case 'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; }
                case '}': Push(new PickleDict()); break;             // EMPTY_DICT
                case 'd': { var items = PopMark(); var d = new PickleDict(); SetItems(d, items); Push(d); break; }
                case 's': { var v = Pop(); var k = Pop(); AsDict(Peek()).Set(k, v); break; }
                case 'u': { var items = PopMark(); SetItems(AsDict(Peek()), items); break; }
                case 0x8f: Push(new List<object?>()); break;         // EMPTY_SET (as a list)
                case 0x90: { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // ADDITEMS
                case 0x91: Push(PopMark()); break;                   // FROZENSET (as a list)
                case 'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case 'J': Push((long)BitConverter.ToInt32(ReadBytes(4))); break;   // BININT
                case 'K': Push((long)ReadByte()); break;                          // BININT1
                case 'M': Push((long)BitConverter.ToUInt16(ReadBytes(2))); break;  // BININT2
                case 0x8a: Push(Long(ReadBytes(ReadByte()))); break;               // LONG1
                case 0x8b: Push(Long(ReadBytes(checked((int)ReadUInt32())))); break; // LONG4
                case 'I': Push(ParseIntLine(ReadLine())); break;
                case 'L': Push(Long(BigInteger.Parse(ReadLine().TrimEnd('L')))); break;
                case 'G': { var b = ReadBytes(8); Array.Reverse(b); Push(BitConverter.ToDouble(b)); break; } // big-endian
                case 'F': Push(double.Parse(ReadLine(), System.Globalization.CultureInfo.InvariantCulture)); break;
                case 'X': Push(Encoding.UTF8.GetString(ReadBytes(checked((int)ReadUInt32())))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(ReadBytes(ReadByte()))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(ReadBytes(checked((int)ReadUInt64())))); break;
                case 'V': Push(ReadLine()); break;                   // UNICODE (raw-unicode-escape; ASCII in practice)
                // Python 2 str: PyTorch decodes these internal strings as ASCII; latin-1 is a superset.
                case 'T': Push(Encoding.Latin1.GetString(ReadBytes(checked((int)ReadUInt32())))); break;
                case 'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break;
                case 'S': Push(ParseQuoted(ReadLine())); break;
                case 'B': Push(ReadBytes(checked((int)ReadUInt32()))); break;
                case 'C': Push(ReadBytes(ReadByte())); break;
                case 0x8e: Push(ReadBytes(checked((int)ReadUInt64()))); break;
                case 'c': { var module = ReadLine(); var name = ReadLine(); Push(Resolve(module, name)); break; }
                case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(Resolve(module ?? "?", name ?? "?")); break; }
                case 'R': { var args = Pop(); var f = Pop(); Push(call(f, AsTuple(args))); break; }
                case 0x81: { var args = Pop(); var cls = Pop(); Push(call(cls, AsTuple(args))); break; } // NEWOBJ
                case 0x92: { Pop(); var args = Pop(); var cls = Pop(); Push(call(cls, AsTuple(args))); break; } // NEWOBJ_EX (kwargs dropped)
                case 'b': Build(Pop(), Peek()); break;
                case 'q': _memo[ReadByte()] = Peek(); break;         // BINPUT
                case 'r': _memo[ReadUInt32()] = Peek(); break;       // LONG_BINPUT
                case 'p': _memo[long.Parse(ReadLine())] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break;       // MEMOIZE
                case 'h': Push(Memo(ReadByte())); break;             // BINGET
                case 'j': Push(Memo(ReadUInt32())); break;           // LONG_BINGET
                case 'g': Push(Memo(long.Parse(ReadLine()))); break;
                case '0': Pop(); break;                              // POP
                case '1': PopMark(); break;                          // POP_MARK
                case '2': Push(Peek()); break;                       // DUP
                case 'Q': Push(persistentLoad(Pop())); break;        // BINPERSID
                default:
                    throw Bad($"pickle opcode 0x{op:x2} ('{(char)op}') is not allowed in a weights file " +
                        "(it builds objects or runs code; only plain data and tensors are accepted)");
            }
        }
    }

    private object? Resolve(string module, string name) =>
        resolveGlobal(module, name) ?? throw Bad(
            $"refusing to load the Python global '{module}.{name}': a weights file should hold only tensors " +
            "and containers, and nothing in it is ever executed. If this is a full pickled model, re-save its " +
            "state_dict() in Python, or convert it to safetensors");

    private static void Build(object? state, object? target)
    {
        // An OrderedDict state dict carries `_metadata` (module versions) as instance state: not needed.
        // A placeholder's state is dropped with it.
        if (target is PickleDict or OpaqueObject) return;
        throw new InvalidDataException("BUILD on an object that is not a dict");
    }

    private static void SetItems(PickleDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw new InvalidDataException("odd number of dict items");
        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1]);
    }

    private object?[] AsTuple(object? args) => args switch
    {
        PickleTuple t => t.Items,
        List<object?> l => l.ToArray(),
        _ => throw Bad("a call's arguments are not a tuple"),
    };

    private List<object?> AsList(object? o) => o switch
    {
        List<object?> l => l,
        OpaqueObject x => x.ListItems,
        _ => throw Bad("APPEND to something that is not a list"),
    };

    private PickleDict AsDict(object? o) => o switch
    {
        PickleDict d => d,
        OpaqueObject x => x.Items,
        _ => throw Bad("SETITEM on something that is not a dict"),
    };

    private object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw Bad($"memo key {key} is missing");

    private void Push(object? o) => _stack.Add(o);

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Bad("stack underflow");

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw Bad("stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("no MARK on the stack");
        int m = _marks.Pop();
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private static object Long(byte[] littleEndianTwosComplement) => Long(new BigInteger(littleEndianTwosComplement));

    private static object Long(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : v;

    private static object ParseIntLine(string s) => s switch
    {
        "01" => true,   // protocol 0 spells booleans as I01 / I00
        "00" => false,
        _ => long.Parse(s, System.Globalization.CultureInfo.InvariantCulture),
    };

    private string ParseQuoted(string s)
    {
        if (s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0]) return s[1..^1];
        throw Bad("malformed STRING opcode");
    }

    private int ReadByte()
    {
        int b = stream.ReadByte();
        return b >= 0 ? b : throw Bad("unexpected end of the pickle (truncated file?)");
    }

    private byte[] ReadBytes(int n)
    {
        if (n < 0 || n > stream.Length) throw Bad($"a pickle item claims {n} bytes (corrupt file?)");
        var b = new byte[n];
        try { stream.ReadExactly(b); }
        catch (EndOfStreamException) { throw Bad("unexpected end of the pickle (truncated file?)"); }
        return b;
    }

    private uint ReadUInt32() => BitConverter.ToUInt32(ReadBytes(4));

    private ulong ReadUInt64() => BitConverter.ToUInt64(ReadBytes(8));

    private string ReadLine()
    {
        var sb = new StringBuilder();
        while (true)
        {
            int b = ReadByte();
            if (b == '\n') break;
            if (sb.Length > 4096) throw Bad("a text opcode's line is too long (corrupt file?)");
            sb.Append((char)b);
        }
        return sb.ToString().TrimEnd('\r');
    }

    private InvalidDataException Bad(string what) => new($"{source}: {what}.");
}
