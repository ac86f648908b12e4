using System.Buffers.Binary;
using System.IO.Compression;

namespace LiteVae.Data.Tests.Support;

/// <summary>Builders for malformed images used by the bad-input tests.</summary>
public static class BadImages
{
    /// <summary>A PNG signature and an IHDR chunk claiming width × height, then IEND: no pixel data.</summary>
    public static byte[] PngHeaderOnly(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        WriteChunk(ms, "IHDR", ihdr);
        WriteChunk(ms, "IDAT", ZlibOf(new byte[16]));
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A copy of a baseline JPEG whose SOF0 marker claims another size.</summary>
    public static byte[] JpegWithSize(byte[] jpeg, int width, int height)
    {
        var copy = (byte[])jpeg.Clone();
        for (int i = 2; i + 9 < copy.Length;)
        {
            if (copy[i] != 0xFF) throw new InvalidDataException("unexpected JPEG layout");
            byte marker = copy[i + 1];
            int length = BinaryPrimitives.ReadUInt16BigEndian(copy.AsSpan(i + 2));
            if (marker is 0xC0 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(i + 5), (ushort)height);
                BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(i + 7), (ushort)width);
                return copy;
            }
            i += 2 + length;
        }
        throw new InvalidDataException("no SOF marker found");
    }

    /// <summary>A copy of a PNG with the CRC of its first IDAT chunk inverted.</summary>
    public static byte[] PngWithWrongIdatCrc(byte[] png)
    {
        var copy = (byte[])png.Clone();
        for (int i = 8; i + 8 <= copy.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(copy.AsSpan(i));
            if (copy.AsSpan(i + 4, 4).SequenceEqual("IDAT"u8))
            {
                copy[i + 8 + length] ^= 0xFF;
                return copy;
            }
            i += 12 + length;
        }
        throw new InvalidDataException("no IDAT chunk");
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        uint crc = Crc32(typeBytes.Concat(data).ToArray());
        BinaryPrimitives.WriteUInt32BigEndian(len, crc);
        s.Write(len);
    }

    private static byte[] ZlibOf(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
