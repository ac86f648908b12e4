using LiteVae.Data.Audit;
using LiteVae.Data.Pipeline;

namespace LiteVae.Data.Tests.Audit;

public sealed class TrainingLogTests : IDisposable
{
    private readonly string _run = Directory.CreateTempSubdirectory("litevae-log-").FullName;

    public void Dispose() => Directory.Delete(_run, true);

    private static StepRecord Step(long step, int firstIndex, bool withBadOne = false) => new(step,
        [new SampleInfo(step * 10, 0, 1, firstIndex, $"k{firstIndex}"), new SampleInfo(step * 10 + 1, 0, 1, firstIndex + 1, $"k{firstIndex + 1}")],
        withBadOne ? [new SkippedSample(step * 10 + 2, 0, 2, firstIndex, $"bad{step}", BadReason.NotAnImage, "not a JPEG")] : []);

    [Fact]
    public void Appends_after_a_torn_record_or_line_stay_aligned_and_readable()
    {
        TrainingLog.Append(_run, [Step(1, 0, withBadOne: true)], s => $"shard-{s}");
        // A crash (or a full disk) in the middle of the next append: part of a record, part of a line.
        string records = Path.Combine(_run, TrainingLog.Folder, TrainingLog.RecordsFile), list = Path.Combine(_run, TrainingLog.Folder, TrainingLog.SkippedFile);
        using (var f = new FileStream(records, FileMode.Append)) f.Write(new byte[10]);
        File.AppendAllText(list, "2\t22\tshard-2\tbro");
        TrainingLog.Append(_run, [Step(2, 5, withBadOne: true), Step(3, 9)], s => $"shard-{s}");

        var read = TrainingLog.Read(_run, lastStep: 3);
        Assert.Equal(
            new[] { (1L, 1, 0, false), (1, 1, 1, false), (1, 2, 0, true), (2, 1, 5, false), (2, 1, 6, false), (2, 2, 5, true), (3, 1, 9, false), (3, 1, 10, false) },
            read.Select(r => (r.Step, r.Shard, r.Index, r.Skipped)));
        var lines = File.ReadAllLines(list);
        Assert.Equal("step\tsample\tshard\tkey\treason\tdetail", lines[0]);
        Assert.StartsWith("1\t12\tshard-2\tbad1\t", lines[1]);
        Assert.Equal("2\t22\tshard-2\tbro", lines[2]);   // the torn line stays a line of its own
        Assert.StartsWith("2\t22\tshard-2\tbad2\t", lines[3]);
    }
}
