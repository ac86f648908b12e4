using System.Buffers.Binary;
using System.Text;

namespace LiteVae.Model.Checkpoints;

/// <summary>
/// Writes a zip archive laid out as PyTorch's own writer (PyTorchStreamWriter, torch 1.13) lays it out, so
/// that <c>torch.load</c> and our reader see a torch.save file: records stored uncompressed, each record's data
/// aligned to 64 bytes by an "FB" extra field of 'Z' padding, CRC and sizes in a data descriptor after the
/// data, a central directory, then zip64 end records and the classic end record. Records are streamed;
/// files and records above 4 GiB are refused (they would need zip64 sizes, which LiteVAE weights never need).
/// </summary>
public sealed class TorchZipWriter
{
    private const int Alignment = 64;
    private const int LocalHeaderSize = 30;
    private readonly Stream _out;
    private readonly string _prefix;
    private readonly List<(string Name, uint Crc, uint Size, uint Offset)> _records = [];

    /// <param name="archiveName">The folder every record sits in; torch names it "archive" for a stream.</param>
    public TorchZipWriter(Stream output, string archiveName = "archive")
    {
        _out = output;
        _prefix = archiveName + "/";
    }

    public void WriteRecord(string name, ReadOnlySpan<byte> data) => WriteRecord(name, [data.ToArray()]);

    /// <summary>One record whose data is the concatenation of <paramref name="chunks"/> (written as they come).</summary>
    public void WriteRecord(string name, IEnumerable<byte[]> chunks)
    {
        long offset = _out.Position;
        if (offset >= uint.MaxValue) throw new IOException("the archive passes 4 GiB; export smaller weights (zip64 is not supported).");
        var nameBytes = Encoding.UTF8.GetBytes(_prefix + name);
        long start = offset + LocalHeaderSize + nameBytes.Length + 4;
        int padding = (int)((Alignment - start % Alignment) % Alignment);
        Span<byte> h = stackalloc byte[LocalHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 0);        // version needed (as torch writes it)
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0x0808);   // data descriptor follows; UTF-8 names
        // method (stored), time, date, crc and sizes stay 0: the data descriptor carries them.
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(padding + 4));
        _out.Write(h);
        _out.Write(nameBytes);
        _out.Write([(byte)'F', (byte)'B', (byte)padding, (byte)(padding >> 8)]);
        for (int i = 0; i < padding; i++) _out.WriteByte((byte)'Z');

        uint crc = 0;
        long size = 0;
        foreach (var chunk in chunks)
        {
            crc = Crc32.Append(crc, chunk);
            size += chunk.Length;
            if (size >= uint.MaxValue) throw new IOException($"record {name} passes 4 GiB; zip64 is not supported.");
            _out.Write(chunk);
        }
        Span<byte> d = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(d, 0x08074b50);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], (uint)size);
        _out.Write(d);
        _records.Add((_prefix + name, crc, (uint)size, (uint)offset));
    }

    /// <summary>Writes the central directory and end records. The stream stays open.</summary>
    public void Finish()
    {
        long cdStart = _out.Position;
        Span<byte> c = stackalloc byte[46];
        foreach (var r in _records)
        {
            var nameBytes = Encoding.UTF8.GetBytes(r.Name);
            c.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c[8..], 0x0808);
            BinaryPrimitives.WriteUInt32LittleEndian(c[16..], r.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c[20..], r.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(c[24..], r.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(c[28..], (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c[42..], r.Offset);
            _out.Write(c);
            _out.Write(nameBytes);
        }
        long cdSize = _out.Position - cdStart;
        long zip64End = _out.Position;
        Span<byte> z = stackalloc byte[56];
        z.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(z, 0x06064b50);
        BinaryPrimitives.WriteUInt64LittleEndian(z[4..], 44);       // size of the rest of this record
        BinaryPrimitives.WriteUInt16LittleEndian(z[12..], 0x031e);  // made by (as miniz writes it)
        BinaryPrimitives.WriteUInt16LittleEndian(z[14..], 0x002d);  // needed: 4.5 (zip64)
        BinaryPrimitives.WriteUInt64LittleEndian(z[24..], (ulong)_records.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(z[32..], (ulong)_records.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(z[40..], (ulong)cdSize);
        BinaryPrimitives.WriteUInt64LittleEndian(z[48..], (ulong)cdStart);
        _out.Write(z);
        Span<byte> loc = stackalloc byte[20];
        loc.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(loc, 0x07064b50);
        BinaryPrimitives.WriteUInt64LittleEndian(loc[8..], (ulong)zip64End);
        BinaryPrimitives.WriteUInt32LittleEndian(loc[16..], 1);
        _out.Write(loc);
        Span<byte> e = stackalloc byte[22];
        e.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)_records.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)_records.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)cdStart);
        _out.Write(e);
        _out.Flush();
    }

    /// <summary>CRC-32 (IEEE 802.3, as zip uses), table-driven.</summary>
    private static class Crc32
    {
        private static readonly uint[] Table = Build();

        private static uint[] Build()
        {
            var t = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
            return t;
        }

        public static uint Append(uint crc, ReadOnlySpan<byte> data)
        {
            uint c = ~crc;
            foreach (byte b in data) c = Table[(c ^ b) & 0xff] ^ (c >> 8);
            return ~c;
        }
    }
}
