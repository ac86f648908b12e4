using System.Net;
using LiteVae.Data.Pipeline;

namespace LiteVae.Data.Shards;

/// <summary>A WebDataset tar shard on disk or behind an http(s) URL, streamed front to back.</summary>
public sealed class TarShard(string location) : ShardSource
{
    private static readonly Lazy<HttpClient> DefaultHttp = new(() => new HttpClient { Timeout = TimeSpan.FromMinutes(30) });

    public string Location { get; } = location;
    public override string Name => Location;
    public bool IsUrl => IsHttp(Location);

    public static bool IsHttp(string location) =>
        location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ||
        location.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public override IEnumerable<RawSample> Read(long skip, ReadContext context)
    {
        Stream? stream = Open(context);
        if (stream is null) yield break;
        using var tar = new TarEntryReader(stream, Name, context.Report);
        foreach (var sample in Group(tar, skip, context))
            yield return sample;
    }

    /// <summary>Opens the file or URL, with retries for URLs; reports and returns null when it cannot.</summary>
    private Stream? Open(ReadContext context)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                if (!IsUrl)
                    return new FileStream(Location, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                var http = context.Http ?? DefaultHttp.Value;
                var response = http.Send(new HttpRequestMessage(HttpMethod.Get, Location), HttpCompletionOption.ResponseHeadersRead, context.Cancellation);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    response.Dispose();
                    throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                }
                return response.Content.ReadAsStream(context.Cancellation);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException && !context.Cancellation.IsCancellationRequested)
            {
                bool retry = IsUrl && attempt < context.OpenRetries;
                if (!retry)
                {
                    context.Report(new DataProblem(BadReason.UnreadableShard, Name, null,
                        (e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : e.Message) +
                        (attempt > 0 ? $" (after {attempt + 1} attempts)" : "") + "; the shard is skipped"));
                    return null;
                }
                context.Cancellation.WaitHandle.WaitOne(context.RetryDelay * (1 << attempt));
                context.Cancellation.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>Groups consecutive entries with the same key into samples (WebDataset convention).</summary>
    internal IEnumerable<RawSample> Group(TarEntryReader tar, long skip, ReadContext context)
    {
        long index = 0;
        RawSample? current = null;
        string? currentKey = null;
        while (true)
        {
            bool more;
            try
            {
                more = tar.MoveNext();
            }
            catch (IOException e)
            {
                // The file or connection failed mid-read: what was read stays, the rest is skipped.
                context.Report(new DataProblem(BadReason.UnreadableShard, Name, currentKey, $"read failed at byte {tar.Position}: {e.Message}"));
                current?.Dispose();
                yield break;
            }
            if (!more) break;
            var entry = tar.Current;
            var (key, ext) = WebDatasetName.Split(entry.Name);
            if (key is null) continue;
            if (key != currentKey)
            {
                if (current is not null)
                {
                    Finish(current);
                    yield return current;
                }
                current = null;
                currentKey = key;
                if (index >= skip)
                    current = new RawSample { Shard = Name, Key = key, IndexInShard = index, KeyEscaped = entry.NameEscaped };
                index++;
            }
            if (current is null) continue; // skipping: headers only
            if (current.Problem is not null) continue;

            if (WebDatasetName.IsImage(ext))
            {
                if (current.HasImage) continue; // a second image in one sample: the first one wins
                if (entry.Size > context.MaxEncodedBytes)
                {
                    current.Problem = new DataProblem(BadReason.FileTooLarge, Name, key,
                        $"'{entry.Name}' has {entry.Size:N0} bytes, above the limit of {context.MaxEncodedBytes:N0} (decode.max-file-bytes)");
                    continue;
                }
                var span = current.AllocateImage(ext, (int)entry.Size);
                if (!ReadData(tar, span, current, context)) break;
            }
            else if (WebDatasetName.IsMetadata(ext) && entry.Size <= context.MaxMetadataBytes)
            {
                var data = new byte[entry.Size];
                if (!ReadData(tar, data, current, context)) break;
                (current.Metadata ??= new Dictionary<string, byte[]>())[ext] = data;
            }
        }
        if (tar.Truncated && current is null)
            context.Report(new DataProblem(BadReason.TruncatedShard, Name, null, tar.TruncationDetail ?? "the shard ends early"));
        if (tar.MissingEnd)
            context.Report(new DataProblem(BadReason.TruncatedShard, Name, null, tar.LastName is null
                ? "the shard is empty (no tar entries)"
                : $"the shard ends without its end-of-archive blocks after entry '{tar.LastName}' at byte {tar.Position}: it was probably cut short, later samples are missing"));
        if (current is not null)
        {
            if (tar.Truncated && current.Problem is null)
            {
                current.DropImage();
                current.Problem = new DataProblem(BadReason.TruncatedShard, Name, current.Key, tar.TruncationDetail ?? "the shard ends inside this sample");
            }
            Finish(current);
            yield return current;
        }
    }

    private bool ReadData(TarEntryReader tar, Span<byte> destination, RawSample sample, ReadContext context)
    {
        try
        {
            return tar.ReadData(destination);
        }
        catch (IOException e)
        {
            sample.DropImage();
            sample.Problem = new DataProblem(BadReason.UnreadableShard, Name, sample.Key, $"read failed at byte {tar.Position}: {e.Message}");
            return false;
        }
    }

    private void Finish(RawSample sample)
    {
        if (sample.Problem is null && !sample.HasImage)
        {
            string has = sample.Metadata is { Count: > 0 } m ? string.Join(", ", m.Keys.Order()) : "no readable entries";
            sample.Problem = new DataProblem(BadReason.NoImage, Name, sample.Key, $"the sample has no jpg/jpeg/png/webp entry ({has})");
        }
    }
}
