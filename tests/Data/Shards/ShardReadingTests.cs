using System.Text;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;

namespace LiteVae.Data.Tests.Shards;

public sealed class ShardReadingTests : IDisposable
{
    private readonly string _dir = Fixtures.TempDir("shards");

    public void Dispose() => Directory.Delete(_dir, true);

    private static List<RawSample> ReadAll(ShardSource shard, List<DataProblem> problems) =>
        shard.Read(new ReadContext { Report = problems.Add }).ToList();

    [Fact]
    public void Webdataset_keys_group_consecutive_entries_and_pass_metadata_through()
    {
        byte[] jpg = ShardBuilder.Jpeg(16, 16, 1);
        var entries = new (string, byte[])[]
        {
            ("dir.v1/a.jpg", jpg), ("dir.v1/a.cls", "3"u8.ToArray()), ("dir.v1/a.json", "{}"u8.ToArray()),
            ("b.seg.png", [1]), ("b.jpeg", jpg), ("b.txt", "hello"u8.ToArray()), ("b.unknown", [5]),
            ("README", [1]), (".hidden.jpg", jpg),
            ("c.cls", "7"u8.ToArray()),            // metadata only
            ("d.JPG", jpg),
        };
        string path = Path.Combine(_dir, "w.tar");
        File.WriteAllBytes(path, ShardBuilder.Tar(entries));
        var problems = new List<DataProblem>();
        var samples = ReadAll(new TarShard(path), problems);
        Assert.Empty(problems);
        Assert.Equal(new[] { "dir.v1/a", "b", "c", "d" }, samples.Select(s => s.Key));
        Assert.Equal(new long[] { 0, 1, 2, 3 }, samples.Select(s => s.IndexInShard));
        Assert.Equal(jpg, samples[0].Image.ToArray());
        Assert.Equal("3", Encoding.ASCII.GetString(samples[0].Metadata!["cls"]));
        Assert.Equal(new[] { "cls", "json" }, samples[0].Metadata!.Keys.Order());
        Assert.Equal("jpeg", samples[1].ImageExtension); // "seg.png" is not an image extension
        Assert.Equal("hello", Encoding.ASCII.GetString(samples[1].Metadata!["txt"]));
        Assert.Null(samples[0].Problem);
        Assert.Equal(BadReason.NoImage, samples[2].Problem!.Reason);
        Assert.Equal("c", samples[2].Problem!.Key);
        Assert.Equal("jpg", samples[3].ImageExtension);
        samples.ForEach(s => s.Dispose());
    }

    [Fact]
    public void Reading_at_random_gives_the_samples_a_full_read_gives_from_a_file_and_over_http()
    {
        string path = Path.Combine(_dir, "s.tar");
        byte[] jpg = ShardBuilder.Jpeg(16, 16, 1);
        // Long names (GNU 'L' and pax headers) and metadata: a sample's range must start at its first header.
        var entries = new List<(string, byte[])>();
        for (int i = 0; i < 12; i++)
        {
            string key = i % 3 == 0 ? $"{new string('d', 120)}/k{i:D2}" : $"k{i:D2}";
            entries.Add(($"{key}.jpg", ShardBuilder.Jpeg(16, 16, i)));
            entries.Add(($"{key}.cls", [(byte)('0' + i % 10)]));
        }
        File.WriteAllBytes(path, ShardBuilder.Tar(entries.ToArray(), System.Formats.Tar.TarEntryFormat.Gnu));
        var problems = new List<DataProblem>();
        var all = ReadAll(new TarShard(path), problems);
        using var server = new LocalHttpServer(new() { ["s.tar"] = File.ReadAllBytes(path), ["norange/s.tar"] = File.ReadAllBytes(path) });
        foreach (var shard in new ShardSource[] { new TarShard(path), new TarShard(server.Url("s.tar")), new TarShard(server.Url("norange/s.tar")) })
        {
            var context = new ReadContext { Report = problems.Add };
            var layout = shard.Scan(context);
            Assert.Equal(12, layout.Samples);
            foreach (int i in new[] { 7, 0, 11, 3, 3, 10 })
            {
                using var sample = shard.ReadAt(layout, i, context);
                Assert.Equal((all[i].Key, (long)i), (sample.Key, sample.IndexInShard));
                Assert.Equal(all[i].Image.ToArray(), sample.Image.ToArray());
                Assert.Equal(all[i].Metadata!["cls"], sample.Metadata!["cls"]);
                Assert.Null(sample.Problem);
            }
        }
        Assert.Empty(problems);
        all.ForEach(s => s.Dispose());
    }

    [Fact]
    public void A_truncated_shard_keeps_the_samples_before_the_cut_and_flags_the_cut_one()
    {
        string path = Path.Combine(_dir, "t.tar");
        var keys = ShardBuilder.WriteJpegShard(path, "t", 6);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
        var problems = new List<DataProblem>();
        var samples = ReadAll(new TarShard(path), problems);
        var good = samples.Where(s => s.Problem is null).Select(s => s.Key).ToList();
        Assert.True(good.Count >= 2);
        Assert.Equal(keys.Take(good.Count), good);
        var last = samples[^1];
        if (last.Problem is not null) Assert.Equal(BadReason.TruncatedShard, last.Problem.Reason);
        else Assert.Contains(problems, p => p.Reason == BadReason.TruncatedShard);
        // Indexed and read at random, the same samples are good and the cut one is flagged the same way.
        var shard = new TarShard(path);
        var layout = shard.Scan(new ReadContext { Report = _ => { } });
        Assert.Equal(samples.Count, layout.Samples);
        for (int i = 0; i < layout.Samples; i++)
        {
            using var sample = shard.ReadAt(layout, i, new ReadContext { Report = _ => { } });
            Assert.Equal(samples[i].Problem?.Reason, sample.Problem?.Reason);
        }
    }

    [Fact]
    public void A_missing_shard_is_reported_not_thrown()
    {
        var problems = new List<DataProblem>();
        var samples = ReadAll(new TarShard(Path.Combine(_dir, "nope.tar")), problems);
        Assert.Empty(samples);
        var p = Assert.Single(problems);
        Assert.Equal(BadReason.UnreadableShard, p.Reason);
        Assert.Contains("file not found", p.Detail);
    }

    [Fact]
    public void Brace_patterns_expand_like_braceexpand()
    {
        Assert.Equal(new[] { "t-000.tar", "t-001.tar", "t-002.tar" }, ShardSpec.ExpandBraces("t-{000..002}.tar"));
        Assert.Equal(new[] { "t-8.tar", "t-9.tar", "t-10.tar" }, ShardSpec.ExpandBraces("t-{8..10}.tar"));
        Assert.Equal(new[] { "t-08.tar", "t-09.tar", "t-10.tar" }, ShardSpec.ExpandBraces("t-{08..10}.tar"));
        Assert.Equal(new[] { "a/x1", "a/x2", "b/x1", "b/x2" }, ShardSpec.ExpandBraces("{a,b}/x{1..2}"));
        Assert.Equal(new[] { "plain.tar" }, ShardSpec.ExpandBraces("plain.tar"));
        Assert.Equal(128, ShardSpec.ExpandBraces("https://host/train-{000000..000127}.tar").Count);
        Assert.Throws<ArgumentException>(() => ShardSpec.ExpandBraces("t-{000..002.tar"));
        Assert.Throws<ArgumentException>(() => ShardSpec.ExpandBraces("t-{5..2}.tar"));
        Assert.Throws<ArgumentException>(() => ShardSpec.ExpandBraces("t-{x}.tar"));
    }

    [Fact]
    public void Sources_resolve_from_folders_patterns_and_urls()
    {
        string shards = Directory.CreateDirectory(Path.Combine(_dir, "shards")).FullName;
        ShardBuilder.WriteJpegShard(Path.Combine(shards, "b.tar"), "b", 2);
        ShardBuilder.WriteJpegShard(Path.Combine(shards, "a.tar"), "a", 2);
        string images = Directory.CreateDirectory(Path.Combine(_dir, "images", "sub")).Parent!.FullName;
        File.WriteAllBytes(Path.Combine(images, "z.jpg"), ShardBuilder.Jpeg(8, 8, 1));
        File.WriteAllBytes(Path.Combine(images, "sub", "y.png"), ShardBuilder.Png(8, 8, 2));
        File.WriteAllBytes(Path.Combine(images, "sub", "y.json"), "{}"u8.ToArray());
        File.WriteAllText(Path.Combine(images, "notes.txt"), "x");

        var fromFolder = ShardSpec.Resolve([shards]);
        Assert.Equal(new[] { "a.tar", "b.tar" }, fromFolder.Select(s => Path.GetFileName(s.Name)));
        Assert.Equal(2, ShardSpec.Resolve([Path.Combine(shards, "*.tar")]).Count);
        Assert.Equal(2, ShardSpec.Resolve([Path.Combine(shards, "{a,b}.tar")]).Count);
        Assert.IsType<TarShard>(Assert.Single(ShardSpec.Resolve([Path.Combine(shards, "missing.tar")])));
        Assert.True(((TarShard)ShardSpec.Resolve(["http://127.0.0.1:1/x-{0..1}.tar"])[1]).IsUrl);

        var folder = ShardSpec.Resolve([images], folderShardSize: 1);
        Assert.Equal(2, folder.Count);
        var problems = new List<DataProblem>();
        var samples = folder.SelectMany(f => ReadAll(f, problems)).ToList();
        Assert.Equal(new[] { "sub/y", "z" }, samples.Select(s => s.Key));
        Assert.True(samples[0].Metadata!.ContainsKey("json"));
        Assert.Empty(problems);
        Assert.Throws<ArgumentException>(() => ShardSpec.Resolve([Path.Combine(shards, "*.zip")]));
        Assert.Throws<ArgumentException>(() => ShardSpec.Resolve([Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName]));
    }
}
