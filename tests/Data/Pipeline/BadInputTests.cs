using System.Text;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;
using static LiteVae.Data.Tests.Pipeline.PipelineTestKit;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>The issue's list of bad inputs, all in one run: each bad sample is skipped and counted
/// with shard and key, every good sample around it arrives, nothing crashes.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _dir = Fixtures.TempDir("bad");

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Entries of one sample written as raw ustar entries (so names may be any bytes).</summary>
    private static byte[] Raw(string name, byte[] data) => ShardBuilder.RawUstarEntry(Encoding.UTF8.GetBytes(name), data);

    [Fact]
    public async Task Every_bad_input_is_skipped_and_counted_and_every_good_sample_arrives()
    {
        var expectedGood = new List<string>();

        // 1. A good local shard.
        string goodA = Path.Combine(_dir, "good-a.tar");
        expectedGood.AddRange(ShardBuilder.WriteJpegShard(goodA, "ga", 6));

        // 2. Truncated tar: cut in the middle; samples that end before the cut arrive.
        string truncated = Path.Combine(_dir, "truncated.tar");
        var truncKeys = ShardBuilder.WriteJpegShard(truncated, "tr", 6);
        byte[] tbytes = File.ReadAllBytes(truncated);
        int cut = tbytes.Length * 55 / 100;
        File.WriteAllBytes(truncated, tbytes[..cut]);
        expectedGood.AddRange(CompleteBefore(tbytes, truncKeys, cut));

        // 3. Tar with garbage over the header of sample 3's image: that sample loses its image.
        string garbage = Path.Combine(_dir, "garbage.tar");
        var garbageKeys = ShardBuilder.WriteJpegShard(garbage, "gg", 6);
        byte[] gbytes = File.ReadAllBytes(garbage);
        int header3 = EntryOffsets(gbytes)[2 * 3];
        var rng = new Random(3);
        for (int i = 0; i < 400; i++) gbytes[header3 + i] = (byte)rng.Next(256);
        File.WriteAllBytes(garbage, gbytes);
        expectedGood.AddRange(garbageKeys.Where((_, i) => i != 3));

        // 4. One shard with every kind of bad image between good ones.
        byte[] jpeg = ShardBuilder.Jpeg(48, 40, 77);
        byte[] png = ShardBuilder.Png(48, 40, 78);
        string mixed = Path.Combine(_dir, "mixed.tar");
        byte[] nonUtf8Name = [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'.', (byte)'j', (byte)'p', (byte)'g'];
        File.WriteAllBytes(mixed, [
            .. Raw("ok1.jpg", jpeg),
            .. Raw("zero.jpg", []),
            .. Raw("half.jpg", jpeg[..(jpeg.Length / 2)]),
            .. Raw("ok2.png", png),
            .. Raw("badcrc.png", BadImages.PngWithWrongIdatCrc(png)),
            .. Raw("text.jpg", "this is a text file named .jpg\n"u8.ToArray()),
            .. Raw("bomb.png", BadImages.PngHeaderOnly(30000, 30000)),
            .. ShardBuilder.RawUstarEntry(nonUtf8Name, jpeg),
            .. Raw("metaonly.cls", "5"u8.ToArray()),
            .. Raw("metaonly.json", "{}"u8.ToArray()),
            .. Raw("ok3.jpg", jpeg),
            .. new byte[1024]]);
        expectedGood.AddRange(["ok1", "ok2", "caf%E9", "ok3"]);

        // 5. A missing shard file and an unreachable URL; 6. a good shard over HTTP.
        string missing = Path.Combine(_dir, "missing.tar");
        string unreachable = $"http://127.0.0.1:{LocalHttpServer.FreePort()}/gone.tar";
        string goodB = Path.Combine(_dir, "good-b.tar");
        expectedGood.AddRange(ShardBuilder.WriteJpegShard(goodB, "gb", 5));
        using var server = new LocalHttpServer(new() { ["good-b.tar"] = File.ReadAllBytes(goodB) });
        string served = server.Url("good-b.tar");

        // Problems of the shards themselves are found when they are indexed; those of samples when they are decoded.
        var logged = new List<DataProblem>();
        var options = Options([goodA, truncated, garbage, mixed, missing, unreachable, served], order: Shuffled with { Streams = 2 },
            problems: logged) with { DecodeWorkers = 3 };
        await using var pipeline = DataPipeline.Start(options);
        var stats = pipeline.Stats;
        stats.Problem += p => { lock (logged) logged.Add(p); };
        long total = options.Order.SamplesPerEpoch;
        var batches = new List<BatchRecord>();
        for (long start = 0; start < total; start += 5)
            batches.AddRange(await Run(pipeline, start, (int)Math.Min(5, total - start), 1));
        var keys = batches.SelectMany(b => b.Keys).ToList();

        Assert.Equal(expectedGood.Order(StringComparer.Ordinal), keys.Order(StringComparer.Ordinal));
        Assert.Equal(total, keys.Count + batches.Sum(b => b.Skipped.Length));   // every sample of the span: trained or listed
        Assert.Equal(1, stats.Count(BadReason.EmptyFile));
        Assert.Equal(1, stats.Count(BadReason.TruncatedImage));
        Assert.Equal(1, stats.Count(BadReason.CorruptImage));
        Assert.Equal(1, stats.Count(BadReason.NotAnImage));
        Assert.Equal(1, stats.Count(BadReason.TooManyPixels));
        Assert.Equal(2, stats.Count(BadReason.NoImage)); // metaonly + the garbage-hit sample
        Assert.True(stats.Count(BadReason.TruncatedShard) + options.Index.Problems.Count(p => p.Reason == BadReason.TruncatedShard) >= 1);
        Assert.Equal(1, stats.EscapedKeys);
        Assert.Equal(2, options.Index.Problems.Count(p => p.Reason == BadReason.UnreadableShard && p.Key is null));
        Assert.Single(options.Index.Problems, p => p.Reason == BadReason.CorruptTar);

        Problem(logged, BadReason.EmptyFile, mixed, "zero");
        Problem(logged, BadReason.TruncatedImage, mixed, "half");
        Problem(logged, BadReason.CorruptImage, mixed, "badcrc");
        Problem(logged, BadReason.NotAnImage, mixed, "text");
        Assert.Contains("30000x30000", Problem(logged, BadReason.TooManyPixels, mixed, "bomb").Detail);
        Problem(logged, BadReason.NoImage, mixed, "metaonly");
        Problem(logged, BadReason.NoImage, garbage, garbageKeys[3]);
        Assert.Contains(logged, p => p.Reason == BadReason.CorruptTar && p.Shard == garbage);
        Assert.Contains(logged, p => p.Reason == BadReason.TruncatedShard && p.Shard == truncated);
        Assert.Contains("file not found", Problem(logged, BadReason.UnreadableShard, missing, null).Detail);
        Problem(logged, BadReason.UnreadableShard, unreachable, null);
    }

    [Fact]
    public void A_run_stops_with_a_clear_error_above_the_bad_fraction_or_after_an_epoch_of_nothing_readable()
    {
        static SkippedSample Bad(long n) => new(n, 0, 0, (int)n, $"bad{n:D2}", BadReason.NotAnImage, "not an image");
        var account = new SampleAccount();
        for (int i = 0; i < 4; i++) account.Add(1, [Bad(2 * i + 1)]);
        account.Check(0.2, minSamples: 10, samplesPerEpoch: 40, _ => "mostly-bad.tar");   // 8 samples: not judged yet
        account.Add(1, [Bad(9)]);
        var e = Assert.Throws<DataQualityException>(() => account.Check(0.2, 10, 40, _ => "mostly-bad.tar"));
        Assert.Contains("5 of 10 samples (50.0%) are bad, above data.max-bad-fraction = 0.2", e.Message);
        Assert.Contains("not-an-image", e.Message);
        Assert.Contains("mostly-bad.tar", e.Message);

        // The counts survive a checkpoint; an epoch without one good sample stops the run whatever the limit.
        var restored = SampleAccount.From(account.Counts);
        Assert.Equal(account.Counts, restored.Counts);
        for (int i = 0; i < 40; i++) restored.Add(0, [Bad(100 + i)]);
        e = Assert.Throws<DataQualityException>(() => restored.Check(1.0, 10, 40, _ => "mostly-bad.tar"));
        Assert.Contains("a whole epoch of 40", e.Message);
    }

    [Fact]
    public void When_no_shard_can_be_read_the_run_stops_with_an_error_instead_of_spinning()
    {
        var e = Assert.Throws<InvalidDataException>(() => DataPipeline.Start(Options([Path.Combine(_dir, "a.tar"), Path.Combine(_dir, "b.tar")])));
        Assert.Contains("all 2 shard(s) are missing, unreadable or empty", e.Message);
        Assert.Contains("file not found", e.Message);
    }

    private static DataProblem Problem(List<DataProblem> logged, BadReason reason, string shard, string? key)
    {
        var match = logged.Where(p => p.Reason == reason && p.Shard == shard && p.Key == key).ToList();
        Assert.True(match.Count == 1, $"expected one {reason.Name()} for {shard} key {key}; got: {string.Join(" | ", logged)}");
        return match[0];
    }

    /// <summary>Header offsets of a ustar archive written by TarWriter (512-byte header + padded data each).</summary>
    private static List<int> EntryOffsets(byte[] tar)
    {
        var offsets = new List<int>();
        for (int at = 0; at + 512 <= tar.Length && tar.AsSpan(at, 512).ContainsAnyExcept((byte)0);)
        {
            offsets.Add(at);
            long size = Convert.ToInt64(Encoding.ASCII.GetString(tar, at + 124, 11).Trim('\0', ' '), 8);
            at += 512 + (int)((size + 511) / 512 * 512);
        }
        return offsets;
    }

    /// <summary>Keys that survive a cut at <paramref name="cut"/>: the whole sample is before the cut, or
    /// the image data is complete and the cut falls before the next (cls) header begins, so nothing
    /// shows that an entry is missing.</summary>
    private static IEnumerable<string> CompleteBefore(byte[] tar, IReadOnlyList<string> keys, int cut)
    {
        var offsets = EntryOffsets(tar);
        for (int i = 0; i < keys.Count; i++)
        {
            int imageHeader = offsets[2 * i], clsHeader = offsets[2 * i + 1];
            long imageEnd = imageHeader + 512 + Size(tar, imageHeader), clsEnd = clsHeader + 512 + Size(tar, clsHeader);
            if (clsEnd <= cut || (imageEnd <= cut && cut <= clsHeader)) yield return keys[i];
        }
    }

    private static long Size(byte[] tar, int header) =>
        Convert.ToInt64(Encoding.ASCII.GetString(tar, header + 124, 11).Trim('\0', ' '), 8);
}
