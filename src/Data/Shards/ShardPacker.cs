using System.Formats.Tar;
using System.Text;
using LiteVae.Data.Decoding;
using LiteVae.Data.Randomness;

namespace LiteVae.Data.Shards;

public sealed record PackOptions
{
    public required string Input { get; init; }
    public required string Output { get; init; }
    /// <summary>Shard file names are <c>{Prefix}-000000.tar</c>, …</summary>
    public string Prefix { get; init; } = "shard";
    public int MaxCount { get; init; } = 1000;
    public long MaxBytes { get; init; } = 512L << 20;
    /// <summary>Shuffle the images with this seed before packing (null keeps path order). Shuffled shards
    /// mix content, so reading whole shards in order still gives varied batches.</summary>
    public long? ShuffleSeed { get; init; } = 0;
    /// <summary>Also decode every image fully (slower); otherwise only headers are checked.</summary>
    public bool FullDecode { get; init; }
    /// <summary>Write a .cls entry with the index of the image's top-level folder (ImageNet layout).</summary>
    public bool ClassFromFolder { get; init; }
    public bool Overwrite { get; init; }
    public DecodeOptions Decode { get; init; } = DecodeOptions.Default;
    public int Workers { get; init; } = Environment.ProcessorCount;
}

public sealed record PackedShard(string Path, int Samples, long Bytes);

public sealed record PackProgress(int Done, int Total, int Shards, long Bytes, TimeSpan Elapsed);

public sealed record PackResult(IReadOnlyList<PackedShard> Shards, int Packed, IReadOnlyList<DataProblem> Skipped, string Pattern);

/// <summary>
/// Packs a folder of images (and their .cls/.json/.txt sidecars) into WebDataset tar shards. Images
/// are checked before they go in (header, pixel limit, JPEG completeness; optionally a full decode);
/// bad ones are skipped and listed. The bytes of good images are copied unchanged. Output is
/// deterministic (fixed order for a seed, fixed timestamps and owners), each shard is written to a
/// temporary file and renamed when complete.
/// </summary>
public static class ShardPacker
{
    private static readonly DateTimeOffset FixedTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static PackResult Pack(PackOptions o, IProgress<PackProgress>? progress = null, CancellationToken ct = default)
    {
        if (o.MaxCount < 1) throw new ArgumentException("--max-count must be at least 1.");
        if (o.MaxBytes < 1) throw new ArgumentException("--max-size must be positive.");
        if (string.IsNullOrWhiteSpace(o.Prefix) || o.Prefix.IndexOfAny(['/', '\\', '.']) >= 0)
            throw new ArgumentException($"--prefix '{o.Prefix}' must be a plain name without '/', '\\' or '.'.");
        var samples = ImageFolder.List(o.Input).ToList();
        if (samples.Count == 0)
            throw new ArgumentException($"{o.Input}: no images (jpg, jpeg, png, webp) found.");
        Directory.CreateDirectory(o.Output);
        var existing = Directory.GetFiles(o.Output, $"{o.Prefix}-*.tar");
        if (existing.Length > 0 && !o.Overwrite)
            throw new ArgumentException($"{o.Output} already holds {existing.Length} '{o.Prefix}-*.tar' shards; use an empty folder, another --prefix, or --overwrite.");
        foreach (var f in existing) File.Delete(f);

        Dictionary<string, int>? classes = null;
        if (o.ClassFromFolder)
        {
            var names = samples.Select(s => TopFolder(s.Key)).Distinct().Order(StringComparer.Ordinal).ToList();
            if (names.Any(n => n is null))
                throw new ArgumentException("--class-from-folder needs every image inside a class folder (input/<class>/...).");
            classes = names.Select((n, i) => (n!, i)).ToDictionary(x => x.Item1, x => x.i);
            File.WriteAllLines(Path.Combine(o.Output, $"{o.Prefix}-classes.txt"), names!);
        }
        if (o.ShuffleSeed is long seed)
        {
            var order = samples.ToArray();
            DeterministicRandom.Create(seed, 0x5041434B).Shuffle(order.AsSpan()); // "PACK"
            samples = order.ToList();
        }

        var shards = new List<PackedShard>();
        var skipped = new List<DataProblem>();
        var usedKeys = new HashSet<string>(StringComparer.Ordinal);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ShardWriter? writer = null;
        int done = 0;
        long totalBytes = 0;
        try
        {
            // Check in parallel, write in order, a chunk at a time (memory stays bounded).
            foreach (var chunk in samples.Chunk(256))
            {
                ct.ThrowIfCancellationRequested();
                var loaded = new (byte[]? Bytes, DataProblem? Problem)[chunk.Length];
                Parallel.For(0, chunk.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, o.Workers), CancellationToken = ct },
                    i => loaded[i] = Load(chunk[i], o));
                for (int i = 0; i < chunk.Length; i++)
                {
                    var sample = chunk[i];
                    done++;
                    if (loaded[i].Problem is { } problem)
                    {
                        skipped.Add(problem);
                        continue;
                    }
                    var entries = new List<(string Ext, byte[] Data)> { (sample.ImageExtension, loaded[i].Bytes!) };
                    foreach (var (ext, path) in sample.Sidecars.OrderBy(s => s.Key, StringComparer.Ordinal))
                        if (!(ext == "cls" && classes is not null))
                            entries.Add((ext, File.ReadAllBytes(path)));
                    if (classes is not null)
                        entries.Add(("cls", Encoding.ASCII.GetBytes(classes[TopFolder(sample.Key)!].ToString())));
                    long size = entries.Sum(e => 512 + (e.Data.Length + 511) / 512 * 512L);
                    if (writer is not null && (writer.Count >= o.MaxCount || (writer.Bytes + size > o.MaxBytes && writer.Count > 0)))
                    {
                        shards.Add(writer.Finish());
                        writer = null;
                    }
                    writer ??= new ShardWriter(Path.Combine(o.Output, $"{o.Prefix}-{shards.Count:D6}.tar"));
                    string key = UniqueKey(TarKey(sample.Key), usedKeys);
                    foreach (var (ext, data) in entries)
                        writer.Add($"{key}.{ext}", data);
                    writer.Count++;
                    totalBytes += size;
                }
                progress?.Report(new PackProgress(done, samples.Count, shards.Count + (writer is null ? 0 : 1), totalBytes, clock.Elapsed));
            }
            if (writer is not null) shards.Add(writer.Finish());
            writer = null;
        }
        finally
        {
            writer?.Abort();
        }
        string pattern = shards.Count == 1
            ? shards[0].Path
            : Path.Combine(o.Output, $"{o.Prefix}-{{{0:D6}..{shards.Count - 1:D6}}}.tar");
        return new PackResult(shards, shards.Sum(s => s.Samples), skipped, pattern);
    }

    private static (byte[]?, DataProblem?) Load(FolderSample sample, PackOptions o)
    {
        try
        {
            var info = new FileInfo(sample.ImagePath);
            if (info.Length > o.Decode.MaxEncodedBytes)
                return (null, new DataProblem(BadReason.FileTooLarge, o.Input, sample.Key, $"{info.Length:N0} bytes is above the limit of {o.Decode.MaxEncodedBytes:N0}"));
            byte[] bytes = File.ReadAllBytes(sample.ImagePath);
            using var image = EncodedImage.Open(bytes, o.Decode);
            if (o.FullDecode) image.DecodeStored(8, new RgbaRegion());
            return (bytes, null);
        }
        catch (BadSampleException e)
        {
            return (null, new DataProblem(e.Reason, o.Input, sample.Key, e.Detail));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, new DataProblem(BadReason.UnreadableFile, o.Input, sample.Key, e.Message));
        }
    }

    private static string? TopFolder(string key)
    {
        int slash = key.IndexOf('/');
        return slash > 0 ? key[..slash] : null;
    }

    /// <summary>WebDataset splits a name at the first dot of its file name, so dots there become '_'.</summary>
    private static string TarKey(string key)
    {
        int slash = key.LastIndexOf('/');
        return key[..(slash + 1)] + key[(slash + 1)..].Replace('.', '_');
    }

    private static string UniqueKey(string key, HashSet<string> used)
    {
        string candidate = key;
        for (int i = 2; !used.Add(candidate); i++) candidate = $"{key}_{i}";
        return candidate;
    }

    /// <summary>One shard being written: a temporary file renamed into place by <see cref="Finish"/>.</summary>
    private sealed class ShardWriter
    {
        private readonly string _path;
        private readonly string _temp;
        private readonly FileStream _file;
        private readonly TarWriter _tar;

        public ShardWriter(string path)
        {
            _path = path;
            _temp = path + ".partial";
            _file = new FileStream(_temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            _tar = new TarWriter(_file, TarEntryFormat.Pax, leaveOpen: true);
        }

        public int Count { get; set; }
        public long Bytes => _file.Position;

        public void Add(string name, byte[] data)
        {
            // ustar headers for plain ASCII names that fit; pax (UTF-8, long names) otherwise.
            bool simple = name.Length <= 100 && name.All(c => c is >= ' ' and < (char)127);
            TarEntry entry = simple ? new UstarTarEntry(TarEntryType.RegularFile, name) : new PaxTarEntry(TarEntryType.RegularFile, name);
            entry.ModificationTime = FixedTime;
            entry.Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            entry.DataStream = new MemoryStream(data, writable: false);
            _tar.WriteEntry(entry);
        }

        public PackedShard Finish()
        {
            _tar.Dispose();
            _file.Flush(flushToDisk: true);
            long bytes = _file.Length;
            _file.Dispose();
            File.Move(_temp, _path, overwrite: true);
            return new PackedShard(_path, Count, bytes);
        }

        public void Abort()
        {
            try
            {
                _tar.Dispose();
                _file.Dispose();
                File.Delete(_temp);
            }
            catch (IOException)
            {
            }
        }
    }
}
