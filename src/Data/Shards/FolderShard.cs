namespace LiteVae.Data.Shards;

/// <summary>
/// A slice of an image folder treated like a shard, so folders get the same order, resume positions and
/// random access as tar shards: sample i is file i of the slice.
/// </summary>
public sealed class FolderShard(string folder, int slice, IReadOnlyList<FolderSample> samples) : ShardSource
{
    public override string Name { get; } = $"{folder}#{slice:D6}";
    public IReadOnlyList<FolderSample> Samples { get; } = samples;

    public override string? Stamp() => string.Join("|", Samples.Count, Samples.Count == 0 ? "" : Samples[^1].Key);

    public override ShardLayout Scan(ReadContext context) => new(Samples.Count, null);

    public override IEnumerable<RawSample> Read(ReadContext context)
    {
        for (int i = 0; i < Samples.Count; i++)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            yield return ReadAt(ShardLayout.Empty, i, context);
        }
    }

    public override RawSample ReadAt(ShardLayout layout, int index, ReadContext context)
    {
        var item = Samples[index];
        var sample = new RawSample { Shard = Name, Key = item.Key, IndexInShard = index };
        try
        {
            using var file = new FileStream(item.ImagePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long length = file.Length;
            if (length > context.MaxEncodedBytes)
            {
                sample.Problem = new DataProblem(BadReason.FileTooLarge, Name, item.Key,
                    $"{item.ImagePath} has {length:N0} bytes, above the limit of {context.MaxEncodedBytes:N0} (decode.max-file-bytes)");
            }
            else
            {
                file.ReadExactly(sample.AllocateImage(item.ImageExtension, (int)length));
                foreach (var (ext, path) in item.Sidecars)
                    (sample.Metadata ??= new Dictionary<string, byte[]>())[ext] = File.ReadAllBytes(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            sample.DropImage();
            sample.Problem = new DataProblem(BadReason.UnreadableFile, Name, item.Key, $"{item.ImagePath}: {e.Message}");
        }
        return sample;
    }
}
