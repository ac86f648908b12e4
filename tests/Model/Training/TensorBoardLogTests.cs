using System.Buffers.Binary;
using LiteVae.Model.Training;

namespace LiteVae.Model.Tests.Training;

public sealed class TensorBoardLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-run-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void TensorBoardScalarsAreValidEventRecords()
    {
        var tb = new TensorBoardLog(Path.Combine(_dir, "tb"));
        tb.Scalars(7, [new("train/loss", 0.25), new("train/lr", 1e-4)]);
        tb.Scalars(8, [new("train/loss", 0.125)]);
        var file = Assert.Single(Directory.GetFiles(tb.Directory, "events.out.tfevents.*"));
        var records = ReadRecords(File.ReadAllBytes(file));
        // TFRecord payloads are tensorflow.Event protobufs: the first is the file version, then one per scalar.
        var events = records.Select(r => Tensorboard.Event.Parser.ParseFrom(r)).ToList();
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        var scalars = events.Skip(1).Select(e => (e.Step, e.Summary.Value[0].Tag, e.Summary.Value[0].SimpleValue)).ToList();
        Assert.Equal([(7L, "train/loss", 0.25f), (7L, "train/lr", 1e-4f), (8L, "train/loss", 0.125f)], scalars);
    }

    /// <summary>
    /// Independent TFRecord reader: u64 length, u32 masked CRC32C of the length, payload, u32 masked
    /// CRC32C of the payload (TensorBoard rejects records whose CRCs do not match).
    /// </summary>
    private static List<byte[]> ReadRecords(byte[] bytes)
    {
        var records = new List<byte[]>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(pos));
            Assert.Equal(Masked(Crc32C(bytes.AsSpan(pos, 8))), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8)));
            var payload = bytes.AsSpan(pos + 12, (int)len);
            Assert.Equal(Masked(Crc32C(payload)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 12 + (int)len)));
            records.Add(payload.ToArray());
            pos += 12 + (int)len + 4;
        }
        return records;
    }

    private static uint Masked(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;

    private static uint Crc32C(ReadOnlySpan<byte> data)
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

    [Fact]
    public void Crc32CMatchesTheStandardCheckValue() =>
        Assert.Equal(0xE3069283u, Crc32C("123456789"u8));
}
