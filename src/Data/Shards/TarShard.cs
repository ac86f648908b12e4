using System.Buffers;
using System.Net;
using System.Net.Http.Headers;

namespace LiteVae.Data.Shards;

/// <summary>A WebDataset tar shard on disk or behind an http(s) URL.</summary>
public sealed class TarShard(string location) : ShardSource
{
    private static readonly Lazy<HttpClient> DefaultHttp = new(() => new HttpClient { Timeout = TimeSpan.FromMinutes(30) });

    public string Location { get; } = location;
    public override string Name => Location;
    public bool IsUrl => IsHttp(Location);

    public static bool IsHttp(string location) =>
        location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ||
        location.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public override string? Stamp()
    {
        if (IsUrl) return null;
        var info = new FileInfo(Location);
        return info.Exists ? $"{info.Length}:{info.LastWriteTimeUtc.Ticks}" : "missing";
    }

    public override IEnumerable<RawSample> Read(ReadContext context)
    {
        Stream? stream = Open(context, null);
        if (stream is null) yield break;
        using var tar = new TarEntryReader(stream, Name, context.Report);
        foreach (var sample in Group(tar, context))
            yield return sample;
    }

    public override ShardLayout Scan(ReadContext context)
    {
        using Stream? stream = Open(context, null);
        if (stream is null) return ShardLayout.Empty;
        using var tar = new TarEntryReader(stream, Name, context.Report);
        var offsets = new List<long>();
        string? currentKey = null;
        while (true)
        {
            try
            {
                if (!tar.MoveNext()) break;
            }
            catch (IOException e)
            {
                context.Report(new DataProblem(BadReason.UnreadableShard, Name, currentKey, $"read failed at byte {tar.Position}: {e.Message}"));
                break;
            }
            var (key, _) = WebDatasetName.Split(tar.Current.Name);
            if (key is null || key == currentKey) continue;
            currentKey = key;
            offsets.Add(tar.Current.Start);
        }
        ReportEnd(tar, context, cutSample: false);
        if (offsets.Count == 0) return ShardLayout.Empty;
        offsets.Add(tar.Position);
        return new ShardLayout(offsets.Count - 1, offsets.ToArray());
    }

    public override RawSample ReadAt(ShardLayout layout, int index, ReadContext context)
    {
        var offsets = layout.Offsets ?? throw new ArgumentException($"{Name}: the layout has no offsets (not a tar layout).");
        long start = offsets[index], end = offsets[index + 1];
        long length = end - start;
        if (length > context.MaxEncodedBytes + context.MaxMetadataBytes + (1 << 20))
            return Bad(index, "?", BadReason.FileTooLarge, $"the sample spans {length:N0} bytes, above the limit of {context.MaxEncodedBytes:N0} (decode.max-file-bytes)");
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
        int read;
        try
        {
            read = ReadRange(start, buffer.AsSpan(0, (int)length), context);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException && !context.Cancellation.IsCancellationRequested)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return Bad(index, "?", BadReason.UnreadableShard, $"reading bytes {start}..{end} failed: {e.Message}");
        }
        // Structural problems (a damaged header inside the range) were reported once, by Scan.
        using var tar = new TarEntryReader(buffer, read, start, Name, _ => { });
        RawSample? sample = null;
        try
        {
            while (tar.MoveNext())
            {
                var entry = tar.Current;
                var (key, ext) = WebDatasetName.Split(entry.Name);
                if (key is null) continue;
                if (sample is null)
                {
                    sample = new RawSample { Shard = Name, Key = key, IndexInShard = index, KeyEscaped = entry.NameEscaped };
                    sample.Own(buffer);
                }
                else if (key != sample.Key) break;
                if (sample.Problem is not null) continue;
                long dataAt = tar.DataOffset - start;
                bool complete = dataAt + entry.Size <= read;
                if (WebDatasetName.IsImage(ext))
                {
                    if (sample.HasImage) continue;   // a second image in one sample: the first one wins
                    if (entry.Size > context.MaxEncodedBytes)
                        sample.Problem = TooLarge(entry, key, context);
                    else if (!complete)
                        sample.Problem = new DataProblem(BadReason.TruncatedShard, Name, key, $"the shard ends inside '{entry.Name}' (entry at byte {entry.Offset})");
                    else
                        sample.SetImageSlice(ext, (int)dataAt, (int)entry.Size);
                }
                else if (WebDatasetName.IsMetadata(ext) && entry.Size <= context.MaxMetadataBytes && complete)
                {
                    (sample.Metadata ??= new Dictionary<string, byte[]>())[ext] = buffer.AsSpan((int)dataAt, (int)entry.Size).ToArray();
                }
            }
        }
        catch
        {
            if (sample is null) ArrayPool<byte>.Shared.Return(buffer);
            sample?.Dispose();
            throw;
        }
        if (sample is null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return Bad(index, "?", BadReason.CorruptTar, $"no readable entry at byte {start} (the shard changed since it was indexed?)");
        }
        Finish(sample);
        return sample;
    }

    private RawSample Bad(int index, string key, BadReason reason, string detail) =>
        new() { Shard = Name, Key = key, IndexInShard = index, Problem = new DataProblem(reason, Name, key == "?" ? null : key, detail) };

    private DataProblem TooLarge(TarEntryInfo entry, string key, ReadContext context) =>
        new(BadReason.FileTooLarge, Name, key, $"'{entry.Name}' has {entry.Size:N0} bytes, above the limit of {context.MaxEncodedBytes:N0} (decode.max-file-bytes)");

    /// <summary>Reads <paramref name="destination"/>.Length bytes from <paramref name="start"/>; fewer when the shard is shorter.</summary>
    private int ReadRange(long start, Span<byte> destination, ReadContext context)
    {
        if (!IsUrl)
        {
            using var handle = File.OpenHandle(Location, FileMode.Open, FileAccess.Read, FileShare.Read);
            int done = 0;
            while (done < destination.Length)
            {
                int n = RandomAccess.Read(handle, destination[done..], start + done);
                if (n == 0) break;
                done += n;
            }
            return done;
        }
        using var stream = Open(context, (start, start + destination.Length - 1)) ?? throw new IOException("the URL could not be opened");
        int total = 0;
        while (total < destination.Length)
        {
            int n = stream.Read(destination[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>Opens the file or URL (a byte range of it when asked), with retries for URLs; reports and
    /// returns null when it cannot.</summary>
    private Stream? Open(ReadContext context, (long From, long To)? range)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                if (!IsUrl)
                    return new FileStream(Location, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                var http = context.Http ?? DefaultHttp.Value;
                var request = new HttpRequestMessage(HttpMethod.Get, Location);
                if (range is { } r) request.Headers.Range = new RangeHeaderValue(r.From, r.To);
                var response = http.Send(request, HttpCompletionOption.ResponseHeadersRead, context.Cancellation);
                if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.PartialContent))
                {
                    response.Dispose();
                    throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                }
                var body = response.Content.ReadAsStream(context.Cancellation);
                // A server that ignores Range sends the whole file: skip to the range.
                if (range is { } skip && response.StatusCode == HttpStatusCode.OK) SkipBytes(body, skip.From);
                return body;
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

    private static void SkipBytes(Stream s, long count)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (count > 0)
            {
                int n = s.Read(scratch, 0, (int)Math.Min(scratch.Length, count));
                if (n == 0) return;
                count -= n;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>Groups consecutive entries with the same key into samples (WebDataset convention).</summary>
    internal IEnumerable<RawSample> Group(TarEntryReader tar, ReadContext context)
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
                current = new RawSample { Shard = Name, Key = key, IndexInShard = index++, KeyEscaped = entry.NameEscaped };
                currentKey = key;
            }
            if (current!.Problem is not null) continue;

            if (WebDatasetName.IsImage(ext))
            {
                if (current.HasImage) continue; // a second image in one sample: the first one wins
                if (entry.Size > context.MaxEncodedBytes)
                {
                    current.Problem = TooLarge(entry, key, context);
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
        ReportEnd(tar, context, cutSample: current is not null);
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

    /// <summary>Reports how the archive ended, when it ended badly. <paramref name="cutSample"/>: a sample was open
    /// when it ended (the sample carries the truncation itself).</summary>
    private void ReportEnd(TarEntryReader tar, ReadContext context, bool cutSample)
    {
        if (tar.Truncated && !cutSample)
            context.Report(new DataProblem(BadReason.TruncatedShard, Name, null, tar.TruncationDetail ?? "the shard ends early"));
        if (tar.MissingEnd)
            context.Report(new DataProblem(BadReason.TruncatedShard, Name, null, tar.LastName is null
                ? "the shard is empty (no tar entries)"
                : $"the shard ends without its end-of-archive blocks after entry '{tar.LastName}' at byte {tar.Position}: it was probably cut short, later samples are missing"));
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
