using System.Buffers;
using System.Text;

namespace LiteVae.Data.Shards;

/// <summary>One regular-file entry of a tar archive. <paramref name="Offset"/> is its own header;
/// <paramref name="Start"/> the first header that belongs to it (a pax or long-name header before it, else
/// the same): reading from Start gives the entry back whole, which is how a sample is read at random.</summary>
public readonly record struct TarEntryInfo(string Name, long Size, long Offset, bool NameEscaped, long Start);

/// <summary>
/// A forward-only tar reader built for damaged archives. It reads POSIX ustar, pax ('x' headers with
/// path and size), GNU ('L' long names, base-256 sizes) and v7 headers from any stream (file or HTTP),
/// with one reusable buffer. Damage never throws: a header with a bad checksum is reported and the
/// reader scans forward for the next valid "ustar" header, even when garbage was inserted so that
/// later headers are no longer 512-byte aligned; an archive that ends inside an entry ends the read
/// and sets <see cref="Truncated"/> (and <see cref="ReadData"/> returns false). Names that are not valid UTF-8 are kept, with the offending bytes written as %XX.
/// </summary>
public sealed class TarEntryReader : IDisposable
{
    private const int Block = 512;
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly bool _inMemory;    // _buffer is the caller's, holding the whole input: never moved, never returned
    private readonly string _shard;
    private readonly Action<DataProblem> _report;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
    private int _pos;          // next unread byte in _buffer
    private int _end;          // bytes valid in _buffer
    private long _bufferStart; // archive offset of _buffer[0]
    private long _dataLeft;    // unread bytes of the current entry's data
    private int _padLeft;      // padding after the current entry's data
    private bool _eof;
    private bool _sawEndBlock;
    private string? _lastName;

    public TarEntryReader(Stream stream, string shardName, Action<DataProblem> report, bool leaveOpen = false)
    {
        _stream = stream;
        _shard = shardName;
        _report = report;
        _leaveOpen = leaveOpen;
    }

    /// <summary>
    /// Reads entries from bytes already in memory (one sample's range of a shard, read at random), without
    /// copying them: after <see cref="MoveNext"/>, the entry's data is <c>data[DataOffset - origin ..][..Size]</c>.
    /// <paramref name="origin"/> is the archive offset of <c>data[0]</c>, so offsets in problems stay true.
    /// </summary>
    public TarEntryReader(byte[] data, int length, long origin, string shardName, Action<DataProblem> report)
    {
        _stream = Stream.Null;
        _shard = shardName;
        _report = report;
        _buffer = data;
        _end = length;
        _bufferStart = origin;
        _eof = true;
        _inMemory = true;
    }

    /// <summary>Archive offset where the current entry's data begins (valid right after <see cref="MoveNext"/>).</summary>
    public long DataOffset { get; private set; }

    /// <summary>Archive offset of the next unread byte.</summary>
    public long Position => _bufferStart + _pos;

    public TarEntryInfo Current { get; private set; }

    /// <summary>True when the archive ended inside an entry or header (the shard file is cut short).
    /// Not reported by this reader: the caller knows which sample was cut.</summary>
    public bool Truncated { get; private set; }

    public string? TruncationDetail { get; private set; }

    /// <summary>True when the archive ended after a complete entry but without its end-of-archive
    /// blocks: no entry was cut, but later entries may be missing.</summary>
    public bool MissingEnd { get; private set; }

    /// <summary>Name of the last entry returned by <see cref="MoveNext"/>.</summary>
    public string? LastName => _lastName;

    /// <summary>Moves to the next regular file. Unread data of the current entry is skipped.</summary>
    public bool MoveNext()
    {
        if (!SkipRest()) return false;
        string? longName = null, paxPath = null;
        long? paxSize = null;
        bool escaped = false;
        long start = -1;   // the entry's first header (pax / long name included)
        while (true)
        {
            if (!SkipRest()) return false; // padding of a pax or long-name entry
            long headerOffset = Position;
            if (start < 0) start = headerOffset;
            if (!Fill(Block))
            {
                var partial = _buffer.AsSpan(_pos, _end - _pos);
                if (partial.ContainsAnyExcept((byte)0)) MarkTruncated(headerOffset, "inside a header");
                else if (partial.IsEmpty && !_sawEndBlock) MissingEnd = true;
                return false;
            }
            var header = _buffer.AsSpan(_pos, Block);
            if (IsZero(header))
            {
                // End-of-archive blocks. Concatenated archives continue after them with a valid header.
                _sawEndBlock = true;
                Consume(Block);
                if (!SkipZeroBlocks()) return false;
                start = -1;
                continue;
            }
            if (!TryParseHeader(header, out char type, out long size, out string name, out bool nameEscaped))
            {
                _report(new DataProblem(BadReason.CorruptTar, _shard, null,
                    $"invalid tar header at byte {headerOffset}" + (_lastName is null ? "" : $" (after entry '{_lastName}')") + "; skipped to the next valid header"));
                if (!Resync(headerOffset)) return false;
                longName = paxPath = null;
                paxSize = null;
                start = -1;
                continue;
            }
            Consume(Block);
            if (paxSize is long ps) size = ps;
            _dataLeft = size;
            _padLeft = (int)((Block - size % Block) % Block);
            switch (type)
            {
                case 'x':
                    (paxPath, paxSize) = ReadPax(size);
                    continue;
                case 'L':
                    longName = ReadLongName(size, out bool e);
                    escaped |= e;
                    continue;
                case '0' or '\0' or '7':
                    break;
                default:
                    // Directories, links, devices, global pax headers, GNU long link names: not samples.
                    if (!SkipRest()) return false;
                    longName = paxPath = null;
                    paxSize = null;
                    escaped = false;
                    start = -1;
                    continue;
            }
            string finalName = paxPath ?? longName ?? name;
            escaped = paxPath is null && (escaped || (longName is null && nameEscaped));
            if (finalName.StartsWith("./", StringComparison.Ordinal)) finalName = finalName[2..];
            Current = new TarEntryInfo(finalName, size, headerOffset, escaped, start);
            DataOffset = Position;
            _lastName = finalName;
            return true;
        }
    }

    /// <summary>
    /// Reads the current entry's data into <paramref name="destination"/> (at least Size bytes long).
    /// Returns false, after reporting, when the archive ends inside the data.
    /// </summary>
    public bool ReadData(Span<byte> destination)
    {
        if (destination.Length < _dataLeft) throw new ArgumentException("destination too small", nameof(destination));
        int done = 0;
        while (_dataLeft > 0)
        {
            int buffered = _end - _pos;
            if (buffered > 0)
            {
                int n = (int)Math.Min(buffered, _dataLeft);
                _buffer.AsSpan(_pos, n).CopyTo(destination[done..]);
                Consume(n);
                done += n;
                _dataLeft -= n;
                continue;
            }
            // Large data bypasses the buffer.
            int read = ReadStream(destination.Slice(done, (int)_dataLeft));
            if (read == 0)
            {
                MarkTruncated(Current.Offset, $"inside the data of '{Current.Name}'");
                return false;
            }
            _bufferStart += read;
            done += read;
            _dataLeft -= read;
        }
        return true;
    }

    /// <summary>Skips the rest of the current entry (data and padding); false if the archive ended.
    /// Ending inside unread data is reported; ending inside the padding after complete data is not.</summary>
    private bool SkipRest()
    {
        long data = _dataLeft, skip = _dataLeft + _padLeft;
        _dataLeft = 0;
        _padLeft = 0;
        if (skip == 0) return true;
        long skipped = 0;
        int buffered = (int)Math.Min(_end - _pos, skip);
        Consume(buffered);
        skipped += buffered;
        if (skipped < skip && _stream.CanSeek && !_eof)
        {
            long available = _stream.Length - _stream.Position;
            long n = Math.Min(available, skip - skipped);
            _stream.Seek(n, SeekOrigin.Current);
            _bufferStart += n;
            skipped += n;
            if (n == available) _eof = skipped < skip;
        }
        while (skipped < skip)
        {
            _bufferStart += _end;
            _pos = _end = 0;
            int n = ReadStream(_buffer.AsSpan(0, (int)Math.Min(_buffer.Length, skip - skipped)));
            if (n == 0) break;
            _end = n;
            int used = (int)Math.Min(n, skip - skipped);
            Consume(used);
            skipped += used;
        }
        if (skipped == skip) return true;
        if (skipped < data) MarkTruncated(Current.Offset, $"inside the data of '{Current.Name}'");
        else MissingEnd = true;
        return false;
    }

    private void MarkTruncated(long offset, string where)
    {
        if (Truncated) return;
        Truncated = true;
        TruncationDetail = $"the shard ends {where} (entry at byte {offset}, archive ends at byte {Position})";
    }

    private bool SkipZeroBlocks()
    {
        while (true)
        {
            if (!Fill(Block)) return false;
            if (!IsZero(_buffer.AsSpan(_pos, Block))) return true;
            Consume(Block);
        }
    }

    /// <summary>Scans forward from just after <paramref name="badOffset"/> for a header with the ustar magic
    /// and a valid checksum, at any byte offset (inserted garbage breaks the 512-byte alignment).</summary>
    private bool Resync(long badOffset)
    {
        _pos = (int)(badOffset - _bufferStart) + 1;
        while (true)
        {
            if (!Fill(Block))
            {
                _pos = _end;
                return false;
            }
            int keepFrom = Math.Max(_pos, _end - 261); // candidates from here on were not fully seen yet
            int searchFrom = _pos + 257;
            while (searchFrom + 5 <= _end)
            {
                int at = _buffer.AsSpan(searchFrom, _end - searchFrom).IndexOf("ustar"u8);
                if (at < 0) break;
                int start = searchFrom + at - 257;
                if (start + Block > _end)
                {
                    keepFrom = start; // magic seen but the header is not fully buffered yet
                    break;
                }
                if (TryParseHeader(_buffer.AsSpan(start, Block), out _, out _, out _, out _))
                {
                    _pos = start;
                    return true;
                }
                searchFrom = searchFrom + at + 1;
            }
            _pos = keepFrom;
            if (!Fill(_end - _pos + 1))
            {
                _pos = _end;
                return false;
            }
        }
    }

    private (string? Path, long? Size) ReadPax(long size)
    {
        if (size > 1 << 20) { SkipRest(); return (null, null); }
        var data = new byte[size];
        if (!ReadData(data)) return (null, null);
        string? path = null;
        long? paxSize = null;
        int i = 0;
        while (i < data.Length)
        {
            int space = Array.IndexOf(data, (byte)' ', i);
            if (space < 0) break;
            if (!int.TryParse(Encoding.ASCII.GetString(data, i, space - i), out int len) || len <= 0 || i + len > data.Length) break;
            var record = data.AsSpan(space + 1, i + len - space - 2); // without trailing newline
            int eq = record.IndexOf((byte)'=');
            if (eq > 0)
            {
                string key = Encoding.UTF8.GetString(record[..eq]);
                var value = record[(eq + 1)..];
                if (key == "path") path = Encoding.UTF8.GetString(value);
                else if (key == "size" && long.TryParse(Encoding.ASCII.GetString(value), out long s) && s >= 0) paxSize = s;
            }
            i += len;
        }
        return (path, paxSize);
    }

    private string? ReadLongName(long size, out bool escaped)
    {
        escaped = false;
        if (size > 1 << 16) { SkipRest(); return null; }
        var data = new byte[size];
        if (!ReadData(data)) return null;
        int nul = Array.IndexOf(data, (byte)0);
        return DecodeName(data.AsSpan(0, nul < 0 ? data.Length : nul), out escaped);
    }

    private static bool TryParseHeader(ReadOnlySpan<byte> h, out char type, out long size, out string name, out bool escaped)
    {
        type = '\0';
        size = 0;
        name = "";
        escaped = false;
        if (!TryParseOctal(h.Slice(148, 8), out long stored)) return false;
        long unsigned = 0, signed = 0;
        for (int i = 0; i < Block; i++)
        {
            int b = i is >= 148 and < 156 ? ' ' : h[i];
            unsigned += b;
            signed += (sbyte)(i is >= 148 and < 156 ? (byte)' ' : h[i]);
        }
        if (stored != unsigned && stored != signed) return false;
        if (!TryParseSize(h.Slice(124, 12), out size)) return false;
        type = (char)h[156];
        var rawName = h[..100];
        int nul = rawName.IndexOf((byte)0);
        if (nul >= 0) rawName = rawName[..nul];
        bool posix = h.Slice(257, 6).SequenceEqual("ustar\0"u8);
        var prefix = h.Slice(345, 155);
        int pnul = prefix.IndexOf((byte)0);
        if (pnul >= 0) prefix = prefix[..pnul];
        if (posix && prefix.Length > 0)
        {
            byte[] joined = new byte[prefix.Length + 1 + rawName.Length];
            prefix.CopyTo(joined);
            joined[prefix.Length] = (byte)'/';
            rawName.CopyTo(joined.AsSpan(prefix.Length + 1));
            name = DecodeName(joined, out escaped);
        }
        else
        {
            name = DecodeName(rawName, out escaped);
        }
        return true;
    }

    private static bool TryParseSize(ReadOnlySpan<byte> field, out long size)
    {
        if ((field[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian binary in the remaining bits.
            size = field[0] & 0x7F;
            for (int i = 1; i < field.Length; i++)
            {
                if (size > (long.MaxValue >> 8)) return false;
                size = (size << 8) | field[i];
            }
            return true;
        }
        return TryParseOctal(field, out size);
    }

    private static bool TryParseOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        int i = 0;
        while (i < field.Length && field[i] == ' ') i++;
        bool any = false;
        for (; i < field.Length; i++)
        {
            byte b = field[i];
            if (b is (byte)' ' or 0) break;
            if (b < '0' || b > '7') return false;
            value = value * 8 + (b - '0');
            any = true;
        }
        for (; i < field.Length; i++)
            if (field[i] is not ((byte)' ' or 0)) return false;
        return any;
    }

    /// <summary>UTF-8 when valid; otherwise every non-ASCII byte and '%' becomes %XX (lossless, printable).</summary>
    internal static string DecodeName(ReadOnlySpan<byte> bytes, out bool escaped)
    {
        try
        {
            escaped = false;
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            escaped = true;
            var sb = new StringBuilder(bytes.Length * 2);
            foreach (byte b in bytes)
            {
                if (b < 0x80 && b != '%') sb.Append((char)b);
                else sb.Append('%').Append(b.ToString("X2"));
            }
            return sb.ToString();
        }
    }

    private static bool IsZero(ReadOnlySpan<byte> block) => !block.ContainsAnyExcept((byte)0);

    private void Consume(int n) => _pos += n;

    /// <summary>Makes at least <paramref name="need"/> bytes available at _pos; false at end of stream.</summary>
    private bool Fill(int need)
    {
        if (_end - _pos >= need) return true;
        if (_inMemory) return false;   // all of the input is there already
        if (_pos > 0)
        {
            int left = _end - _pos;
            Buffer.BlockCopy(_buffer, _pos, _buffer, 0, left);
            _bufferStart += _pos;
            _pos = 0;
            _end = left;
        }
        if (need > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(need);
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        while (_end < need && !_eof)
        {
            int n = ReadStream(_buffer.AsSpan(_end));
            if (n == 0) _eof = true;
            _end += n;
        }
        return _end - _pos >= need;
    }

    private int ReadStream(Span<byte> destination)
    {
        if (_eof) return 0;
        int n = _stream.Read(destination);
        if (n == 0) _eof = true;
        return n;
    }

    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
        if (_buffer.Length > 0 && !_inMemory) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
