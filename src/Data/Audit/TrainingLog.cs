using System.Buffers.Binary;
using System.Globalization;
using LiteVae.Data.Pipeline;

namespace LiteVae.Data.Audit;

/// <summary>The samples one training step went through: those it trained and those of its span it skipped as bad.</summary>
public sealed record StepRecord(long Step, IReadOnlyList<SampleInfo> Trained, IReadOnlyList<SkippedSample> Skipped);

/// <summary>One line of the training log: a sample of a step, trained or skipped.</summary>
public readonly record struct LoggedSample(long Step, int Epoch, int Shard, int Index, bool Skipped);

/// <summary>
/// The run's append-only record of which samples each step trained: <c>audit/trained.bin</c>, 24 bytes per
/// sample (step, epoch, shard, index, kind), written with each checkpoint before the checkpoint itself, so every
/// step a checkpoint holds is on record. A resumed run first marks where it resumed: records of later steps
/// from before the resume (their weights were lost) no longer count. <c>audit/skipped.tsv</c> lists the skipped
/// samples for people: step, sample number, shard, key, reason, detail.
/// </summary>
public static class TrainingLog
{
    public const string Folder = "audit";
    public const string RecordsFile = "trained.bin";
    public const string SkippedFile = "skipped.tsv";
    private const int RecordBytes = 24;
    private const int Trained = 0, Skipped = 1, ResumedAt = 2;

    /// <summary>Appends the records (and their skipped samples to the list), flushed to disk.</summary>
    public static void Append(string runDir, IReadOnlyList<StepRecord> records, Func<int, string> shardName)
    {
        if (records.Count == 0) return;
        string dir = Directory.CreateDirectory(Path.Combine(runDir, Folder)).FullName;
        int n = records.Sum(r => r.Trained.Count + r.Skipped.Count);
        var bytes = new byte[n * RecordBytes];
        int at = 0;
        foreach (var r in records)
        {
            foreach (var s in r.Trained) Write(bytes, ref at, r.Step, s.Epoch, s.Shard, s.Index, Trained);
            foreach (var s in r.Skipped) Write(bytes, ref at, r.Step, s.Epoch, s.Shard, s.Index, Skipped);
        }
        AppendRecords(Path.Combine(dir, RecordsFile), bytes);
        var lines = records.SelectMany(r => r.Skipped.Select(s => string.Join('\t', r.Step.ToString(CultureInfo.InvariantCulture),
            s.Number.ToString(CultureInfo.InvariantCulture), shardName(s.Shard), s.Key ?? "?", s.Reason.Name(), Clean(s.Detail)))).ToList();
        if (lines.Count == 0) return;
        string list = Path.Combine(dir, SkippedFile);
        bool fresh = !File.Exists(list);
        var text = (fresh ? "step\tsample\tshard\tkey\treason\tdetail\n" : "") + string.Join('\n', lines) + "\n";
        AppendText(list, text);
    }

    /// <summary>A run resumed from the checkpoint of <paramref name="step"/>: later steps on record are void.</summary>
    public static void MarkResume(string runDir, long step)
    {
        string dir = Directory.CreateDirectory(Path.Combine(runDir, Folder)).FullName;
        var bytes = new byte[RecordBytes];
        int at = 0;
        Write(bytes, ref at, step, 0, 0, 0, ResumedAt);
        AppendRecords(Path.Combine(dir, RecordsFile), bytes);
    }

    /// <summary>
    /// Every sample on record for the steps up to <paramref name="lastStep"/> (the run's last complete checkpoint:
    /// later steps' weights are not on disk), with the records that a resume voided left out. A torn last record
    /// (a crash mid-append) is ignored.
    /// </summary>
    public static IReadOnlyList<LoggedSample> Read(string runDir, long lastStep)
    {
        string path = Path.Combine(runDir, Folder, RecordsFile);
        if (!File.Exists(path)) return [];
        var bytes = File.ReadAllBytes(path);
        var kept = new List<LoggedSample>(bytes.Length / RecordBytes);
        for (int at = 0; at + RecordBytes <= bytes.Length; at += RecordBytes)
        {
            var s = bytes.AsSpan(at, RecordBytes);
            long step = BinaryPrimitives.ReadInt64LittleEndian(s);
            int kind = BinaryPrimitives.ReadInt32LittleEndian(s[20..]);
            if (kind == ResumedAt)
            {
                kept.RemoveAll(r => r.Step > step);
                continue;
            }
            kept.Add(new LoggedSample(step, BinaryPrimitives.ReadInt32LittleEndian(s[8..]), BinaryPrimitives.ReadInt32LittleEndian(s[12..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[16..]), kind == Skipped));
        }
        kept.RemoveAll(r => r.Step > lastStep);
        return kept;
    }

    private static void Write(byte[] bytes, ref int at, long step, int epoch, int shard, int index, int kind)
    {
        var s = bytes.AsSpan(at, RecordBytes);
        BinaryPrimitives.WriteInt64LittleEndian(s, step);
        BinaryPrimitives.WriteInt32LittleEndian(s[8..], epoch);
        BinaryPrimitives.WriteInt32LittleEndian(s[12..], shard);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], index);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], kind);
        at += RecordBytes;
    }

    private static string Clean(string s) => s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>
    /// Appends whole records or nothing: a torn record at the end (a crash mid-append) is cut off first, and a
    /// failed write (a full disk) is cut back, so every later record stays aligned (a shifted file reads as
    /// garbage: found by the soak, whose disk ran full mid-append).
    /// </summary>
    private static void AppendRecords(string path, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 1);   // unbuffered: nothing left to flush after a failed write
        long start = f.Length - f.Length % RecordBytes;
        AppendAt(f, start, bytes);
    }

    /// <summary>Appends lines, on a line of their own after a torn last line, and nothing if the write fails.</summary>
    private static void AppendText(string path, string text)
    {
        using var f = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 1);   // unbuffered: nothing left to flush after a failed write
        long start = f.Length;
        if (start > 0)
        {
            f.Position = start - 1;
            if (f.ReadByte() != '\n') text = "\n" + text;
        }
        AppendAt(f, start, System.Text.Encoding.UTF8.GetBytes(text));
    }

    private static void AppendAt(FileStream f, long start, byte[] bytes)
    {
        try
        {
            f.SetLength(start);
            f.Position = start;
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        catch
        {
            try { f.SetLength(start); } catch (IOException) { }   // the disk is full: cutting back frees, never needs, space
            throw;
        }
    }
}
