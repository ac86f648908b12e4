using System.Buffers.Binary;
using LiteVae.Model.Training;

namespace LiteVae.Model.Tests.Training;

public sealed class RunDirectoryProgressTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-run-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void RunDirectoryHasTheDocumentedLayout()
    {
        var started = new DateTime(2026, 11, 25, 9, 8, 7);
        var run = RunDirectory.Create(_dir, "phase a/128", "bf16", started, "a = 1\n");
        Assert.Equal("20261125-090807_phase-a-128_bf16", Path.GetFileName(run.Root));
        foreach (var sub in new[] { "checkpoints", "eval", "tb" })
            Assert.True(Directory.Exists(Path.Combine(run.Root, sub)), sub);
        Assert.Equal("a = 1\n", File.ReadAllText(Path.Combine(run.Root, "config.conf")));
        Assert.EndsWith("eval/step-00000042.png", run.EvalPng(42));
        // Same second, same name: a unique suffix, never a shared directory.
        var second = RunDirectory.Create(_dir, "phase a/128", "bf16", started, "");
        Assert.EndsWith("_bf16-2", second.Root);
        // An explicit non-empty directory is refused with advice.
        var e = Assert.Throws<IOException>(() => RunDirectory.CreateAt(run.Root, ""));
        Assert.Contains("--resume", e.Message);
        Assert.Equal(run.Root, RunDirectory.Open(run.Root).Root);
        Assert.Throws<InvalidDataException>(() => RunDirectory.Open(run.Checkpoints));
    }

    [Fact]
    public void ProgressComputesThroughputDataWaitAndEta()
    {
        var p = new ProgressTracker(totalSteps: 1000, imagesPerStep: 16);
        var losses = new List<KeyValuePair<string, double>> { new("loss", 0.5), new("kl", 1234.5678) };
        // Warm-up window: slow; it counts for its own line, not for later ETAs.
        var r1 = p.Window(step: 100, stepsInWindow: 100, wallSeconds: 100, dataWaitSeconds: 50, losses);
        Assert.Equal(16.0, r1.ImagesPerSecond, 9);
        Assert.Equal(0.5, r1.DataWaitFraction, 9);
        Assert.Equal(900.0, r1.Eta!.Value.TotalSeconds, 6);
        var r2 = p.Window(200, 100, 50, 0, losses); // 0.5 s/step replaces the warm-up speed
        Assert.Equal(32.0, r2.ImagesPerSecond, 9);
        Assert.Equal(800 * 0.5, r2.Eta!.Value.TotalSeconds, 6);
        var r3 = p.Window(300, 100, 25, 0, losses); // smoothed: 0.3*0.25 + 0.7*0.5 = 0.425 s/step
        Assert.Equal(700 * 0.425, r3.Eta!.Value.TotalSeconds, 6);
        var done = p.Window(1000, 700, 100, 0, losses);
        Assert.Equal(TimeSpan.Zero, done.Eta);

        string line = ProgressTracker.Format(r2);
        Assert.Equal("step  200/1000 (20.0%) | 32.0 img/s | loss 0.5000 kl 1234.5678 | data wait 0.0% | ETA 6m40s", line);
        Assert.Equal("3h25m", ProgressTracker.FormatDuration(TimeSpan.FromMinutes(205)));
        Assert.Equal("1.23e-5", ProgressTracker.FormatNumber(1.234e-5));
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
