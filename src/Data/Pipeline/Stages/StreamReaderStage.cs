using System.Threading.Channels;
using LiteVae.Data.Shards;

namespace LiteVae.Data.Pipeline.Stages;

/// <summary>
/// Reads one logical stream: shard ordinals s, s + S, s + 2S, … of each epoch's shard order, in
/// shuffle windows, into its own bounded channel, then an end-of-epoch marker, then the next epoch.
/// Reading (blocking file or HTTP I/O) happens while holding one of the shared reader slots, so at
/// most <see cref="DataPipelineOptions.Readers"/> streams touch storage at once; writing to the
/// channel happens outside the slot, so a full channel never blocks other streams.
/// </summary>
public sealed class StreamReaderStage(int stream, DataPipelineOptions options, ReadContext context, SemaphoreSlim readSlots)
{
    public async Task RunAsync(DataPosition start, ChannelWriter<StreamItem> output, CancellationToken ct)
    {
        int streams = options.Streams;
        int windowSize = Math.Max(1, options.ShuffleWindow);
        int epoch = start.Epoch;
        var cursor = start.Streams[stream];
        var window = new List<RawSample?>(windowSize);
        try
        {
            while (options.MaxEpochs is null || epoch < options.MaxEpochs)
            {
                int[] order = EpochOrder.Shards(options.Shards.Count, options.Seed, epoch, options.ShuffleShards);
                for (int k = cursor.ShardOrdinal; k < order.Length; k += streams)
                {
                    bool resumed = k == cursor.ShardOrdinal;
                    long windowStart = resumed ? cursor.WindowStart : 0;
                    int offset = resumed ? cursor.WindowOffset : 0;
                    using var samples = options.Shards[order[k]].Read(windowStart, context).GetEnumerator();
                    while (true)
                    {
                        window.Clear();
                        await readSlots.WaitAsync(ct).ConfigureAwait(false);
                        try
                        {
                            while (window.Count < windowSize && samples.MoveNext())
                                window.Add(samples.Current);
                        }
                        finally
                        {
                            readSlots.Release();
                        }
                        int n = window.Count;
                        if (n == 0) break;
                        bool lastWindow = n < windowSize;
                        int[]? perm = windowSize > 1 ? EpochOrder.Window(n, options.Seed, epoch, k, windowStart) : null;
                        for (int i = 0; i < n; i++)
                        {
                            int at = perm?[i] ?? i;
                            var sample = window[at]!;
                            window[at] = null;
                            if (i < offset)
                            {
                                sample.Dispose();
                                continue;
                            }
                            // Where this stream resumes after this sample: the next item of the window,
                            // the next window, or (after a short, final window) the stream's next shard.
                            sample.CursorAfter = i + 1 < n ? new StreamCursor(k, windowStart, i + 1)
                                : lastWindow ? new StreamCursor(k + streams, 0, 0)
                                : new StreamCursor(k, windowStart + n, 0);
                            try
                            {
                                await output.WriteAsync(new StreamItem(sample, epoch), ct).ConfigureAwait(false);
                            }
                            catch
                            {
                                sample.Dispose();
                                throw;
                            }
                        }
                        offset = 0;
                        windowStart += n;
                        if (lastWindow) break;
                    }
                }
                await output.WriteAsync(StreamItem.EndOf(epoch), ct).ConfigureAwait(false);
                epoch++;
                cursor = new StreamCursor(stream, 0, 0);
            }
            output.TryComplete();
        }
        finally
        {
            foreach (var s in window) s?.Dispose();
        }
    }
}
