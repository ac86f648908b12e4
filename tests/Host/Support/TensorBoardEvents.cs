using System.Buffers.Binary;
using System.Text;

namespace LiteVae.Host.Tests.Support;

/// <summary>
/// An event-file reader written from the formats' definitions, sharing no code with the writer
/// (TorchSharp's SummaryWriter and its protobuf classes): TFRecord framing (u64 length, u32 masked
/// CRC32C of the length, payload, u32 masked CRC32C of the payload) and the protobuf wire format of
/// tensorflow.Event (2: step; 5: summary → repeated 1: value → 1: tag, 2: simple_value, 4: image).
/// A record whose CRC does not match fails the read, as it would make TensorBoard drop the file's rest.
/// </summary>
public static class TensorBoardEvents
{
    public sealed record Point(string File, long Step, string Tag, float? Scalar, bool IsImage);

    /// <summary>Every scalar and image of every event file in <paramref name="directory"/>, file by file (name order).</summary>
    public static List<Point> Read(string directory) =>
        Directory.GetFiles(directory, "events.out.tfevents.*").Order(StringComparer.Ordinal).SelectMany(ReadFile).ToList();

    /// <summary>One curve: step → value; fails if a step appears twice (two points TensorBoard would both draw).</summary>
    public static SortedDictionary<long, float> Curve(IEnumerable<Point> points, string tag)
    {
        var curve = new SortedDictionary<long, float>();
        foreach (var p in points.Where(p => p.Tag == tag && p.Scalar is not null))
            if (!curve.TryAdd(p.Step, p.Scalar!.Value))
                throw new InvalidDataException($"{tag} has two points at step {p.Step} (one of them in {Path.GetFileName(p.File)})");
        return curve;
    }

    private static IEnumerable<Point> ReadFile(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 12) throw new InvalidDataException($"{file}: torn record header at byte {pos}");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(pos));
            if (Masked(Crc32C(bytes.AsSpan(pos, 8))) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8)))
                throw new InvalidDataException($"{file}: bad length CRC at byte {pos}");
            if ((ulong)(bytes.Length - pos - 16) < length) throw new InvalidDataException($"{file}: torn record at byte {pos}");
            var payload = bytes.AsSpan(pos + 12, (int)length);
            if (Masked(Crc32C(payload)) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 12 + (int)length)))
                throw new InvalidDataException($"{file}: bad payload CRC at byte {pos}");
            foreach (var p in Event(file, payload.ToArray())) yield return p;
            pos += 16 + (int)length;
        }
    }

    private static List<Point> Event(string file, byte[] e)
    {
        long step = 0;
        var values = new List<byte[]>();
        foreach (var (field, value, varint) in Fields(e))
            if (field == 2) step = (long)varint;
            else if (field == 5) values.AddRange(Fields(value!).Where(f => f.Field == 1).Select(f => f.Bytes!));
        return values.Select(v =>
        {
            string tag = "";
            float? scalar = null;
            bool image = false;
            foreach (var (field, bytes, _) in Fields(v))
                if (field == 1) tag = Encoding.UTF8.GetString(bytes!);
                else if (field == 2) scalar = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(bytes));
                else if (field == 4) image = true;
            return new Point(file, step, tag, scalar, image);
        }).ToList();
    }

    /// <summary>The fields of one protobuf message: number, bytes (length-delimited and fixed types), varint value.</summary>
    private static IEnumerable<(int Field, byte[]? Bytes, ulong Varint)> Fields(byte[] m)
    {
        int pos = 0;
        while (pos < m.Length)
        {
            ulong key = Varint(m, ref pos);
            int field = (int)(key >> 3);
            switch ((int)(key & 7))
            {
                case 0: yield return (field, null, Varint(m, ref pos)); break;
                case 1: yield return (field, m[pos..(pos + 8)], 0); pos += 8; break;
                case 2:
                    int n = (int)Varint(m, ref pos);
                    yield return (field, m[pos..(pos + n)], 0);
                    pos += n;
                    break;
                case 5: yield return (field, m[pos..(pos + 4)], 0); pos += 4; break;
                default: throw new InvalidDataException($"wire type {key & 7} at byte {pos}");
            }
        }
    }

    private static ulong Varint(byte[] m, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = m[pos++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
    }

    private static uint Masked(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;

    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }
}
