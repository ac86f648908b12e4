using System.Formats.Tar;
using LiteVae.Data.Decoding;
using LiteVae.Data.Shards;
using LiteVae.Host.Commands;
using SkiaSharp;

namespace LiteVae.Host.Tests.Commands;

public sealed class ShardsCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"litevae-cli-{Guid.NewGuid():N}");

    public ShardsCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, true);

    private static byte[] Jpeg(int seed)
    {
        using var bitmap = new SKBitmap(24 + seed % 5, 20);
        bitmap.Erase(new SKColor((byte)(seed * 40), (byte)(255 - seed * 20), 90));
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    /// <summary>An ImageNet-like folder: class folders, a sidecar, a dotted name, a broken file.</summary>
    private string MakeInput()
    {
        string input = Path.Combine(_dir, "images");
        for (int c = 0; c < 3; c++)
        {
            string folder = Directory.CreateDirectory(Path.Combine(input, $"class{c}")).FullName;
            for (int i = 0; i < 5; i++)
                File.WriteAllBytes(Path.Combine(folder, $"img.{c}.{i}.jpg"), Jpeg(c * 5 + i));
        }
        File.WriteAllText(Path.Combine(input, "class1", "img.1.2.json"), "{\"caption\":\"x\"}");
        File.WriteAllText(Path.Combine(input, "class2", "broken.jpg"), "not a jpeg");
        return input;
    }

    [Fact]
    public void Pack_makes_shards_that_hold_every_good_image_once_and_lists_the_bad_one()
    {
        string input = MakeInput();
        string output = Path.Combine(_dir, "shards");
        var log = new StringWriter();
        int code = ShardsCommand.Pack(new PackOptions
        {
            Input = input, Output = output, Prefix = "train", MaxCount = 4, ClassFromFolder = true, ShuffleSeed = 7,
        }, log);
        Assert.Equal(0, code);
        string text = log.ToString();
        Assert.Contains("packed 15 images into 4 shards", text);
        Assert.Contains("train-{000000..000003}.tar", text);
        Assert.Contains("not-an-image: class2/broken", text);

        // Read back with .NET's TarReader (independent of our reader): 15 images, each with its class.
        var names = new List<string>();
        var files = Directory.GetFiles(output, "train-*.tar").Order().ToArray();
        Assert.Equal(4, files.Length);
        foreach (var f in files)
        {
            using var reader = new TarReader(File.OpenRead(f));
            while (reader.GetNextEntry() is { } entry) names.Add(entry.Name);
        }
        var images = names.Where(n => n.EndsWith(".jpg")).ToList();
        Assert.Equal(15, images.Count);
        Assert.Equal(15, names.Count(n => n.EndsWith(".cls")));
        Assert.Single(names, n => n.EndsWith(".json"));
        Assert.All(images, n => Assert.DoesNotContain('.', Path.GetFileNameWithoutExtension(n))); // keys survive the first-dot rule
        Assert.Equal(["class0", "class1", "class2"], File.ReadAllLines(Path.Combine(output, "train-classes.txt")));
        // Class of class2/img_2_3 is 2, read through our WebDataset reader.
        var sample = ShardSpec.Resolve([Path.Combine(output, "train-*.tar")])
            .SelectMany(s => s.Read(new ReadContext { Report = p => Assert.Fail(p.ToString()) }))
            .Single(s => s.Key == "class2/img_2_3");
        Assert.Equal("2", System.Text.Encoding.ASCII.GetString(sample.Metadata!["cls"]));

        // Packing again into the same folder is refused unless --overwrite.
        var e = Assert.Throws<ArgumentException>(() => ShardsCommand.Pack(new PackOptions { Input = input, Output = output, Prefix = "train" }, TextWriter.Null));
        Assert.Contains("--overwrite", e.Message);
    }

    [Fact]
    public void Pack_is_deterministic()
    {
        string input = MakeInput();
        var a = ShardPacker.Pack(new PackOptions { Input = input, Output = Path.Combine(_dir, "a"), MaxCount = 6, ShuffleSeed = 3 });
        var b = ShardPacker.Pack(new PackOptions { Input = input, Output = Path.Combine(_dir, "b"), MaxCount = 6, ShuffleSeed = 3, Workers = 1 });
        Assert.Equal(a.Shards.Count, b.Shards.Count);
        for (int i = 0; i < a.Shards.Count; i++)
            Assert.Equal(File.ReadAllBytes(a.Shards[i].Path), File.ReadAllBytes(b.Shards[i].Path));
    }

    [Fact]
    public void Check_counts_samples_and_lists_bad_ones_with_key_and_reason()
    {
        string input = MakeInput();
        string output = Path.Combine(_dir, "shards");
        ShardPacker.Pack(new PackOptions { Input = input, Output = output, MaxCount = 100, ShuffleSeed = null });
        var good = new StringWriter();
        Assert.Equal(0, ShardsCommand.Check([output], fullDecode: true, workers: 2, DecodeOptions.Default, good));
        Assert.Contains("15 samples, 15 good", good.ToString());
        Assert.Contains("total: 1 shards, 15 samples, 15 good, 0 bad", good.ToString());

        // A shard with a cut-off JPEG and a missing shard next to it.
        string bad = Path.Combine(_dir, "bad.tar");
        byte[] jpeg = Jpeg(1);
        using (var w = new TarWriter(File.Create(bad), TarEntryFormat.Ustar))
        {
            foreach (var (name, data) in new[] { ("ok.jpg", jpeg), ("cut.jpg", jpeg[..(jpeg.Length / 2)]) })
                w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
        }
        var log = new StringWriter();
        int code = ShardsCommand.Check([bad, Path.Combine(_dir, "missing.tar")], true, 2, DecodeOptions.Default, log);
        Assert.Equal(1, code);
        string text = log.ToString();
        Assert.Contains("bad.tar: 2 samples, 1 good, 1 bad", text);
        Assert.True(text.Contains("truncated-image"), text);
        Assert.Contains("key cut", text);
        Assert.Contains("missing.tar: UNREADABLE", text);
        Assert.Contains("1 shards unreadable", text);
    }

    [Fact]
    public void The_verbs_are_wired_into_the_cli_and_user_errors_exit_1()
    {
        string input = MakeInput();
        string output = Path.Combine(_dir, "cli");
        Assert.Equal(0, Program.Main(["shards", "pack", "--input", input, "--output", output, "--max-count", "8"]));
        Assert.Equal(2, Directory.GetFiles(output, "shard-*.tar").Length);
        Assert.Equal(0, Program.Main(["shards", "check", Path.Combine(output, "shard-{000000..000001}.tar")]));
        Assert.Equal(1, Program.Main(["shards", "pack", "--input", Path.Combine(_dir, "nope"), "--output", output]));
    }
}
