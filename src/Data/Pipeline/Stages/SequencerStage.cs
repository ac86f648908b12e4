using System.Threading.Channels;

namespace LiteVae.Data.Pipeline.Stages;

/// <summary>
/// Merges the stream channels into the epoch's logical sequence (round-robin, one sample per stream
/// in turn, streams that finished the epoch drop out), numbers each sample (epoch index, and run-wide
/// number), records the position after it, keeps only this rank's slice (cut from the run-wide numbers), and hands samples to the decoders with a
/// sequence number the assembler uses to restore this order. An in-flight limit bounds how far the
/// decoders may run ahead of the assembler (and so the assembler's reorder buffer).
/// </summary>
public sealed class SequencerStage(DataPipelineOptions options, SemaphoreSlim inFlight)
{
    public async Task RunAsync(DataPosition start, ChannelReader<StreamItem>[] streams, ChannelWriter<RawSample> output, CancellationToken ct)
    {
        int s = streams.Length;
        string fingerprint = start.OrderFingerprint;
        int epoch = start.Epoch;
        long index = start.Index;
        long global = start.Global;
        int next = start.NextStream;
        var cursors = start.Streams.ToArray();
        var finished = new bool[s];
        long sequence = 0;
        while (true)
        {
            if (Array.TrueForAll(finished, f => f))
            {
                if (index == 0)
                    throw new InvalidDataException(
                        $"data: epoch {epoch} has no samples: all {options.Shards.Count} shards are missing, unreadable or empty (see the data problems reported).");
                epoch++;
                if (options.MaxEpochs is int max && epoch >= max) break;
                index = 0;
                next = 0;
                cursors = DataPosition.StartOf(epoch, s, fingerprint).Streams.ToArray();
                Array.Clear(finished);
                continue;
            }
            if (finished[next])
            {
                next = (next + 1) % s;
                continue;
            }
            if (!await streams[next].WaitToReadAsync(ct).ConfigureAwait(false) || !streams[next].TryRead(out var item))
            {
                // Completed channel: the reader stopped at MaxEpochs.
                finished[next] = true;
                continue;
            }
            if (item.IsEndOfEpoch)
            {
                finished[next] = true;
                next = Advance(next, finished);
                continue;
            }
            var sample = item.Sample!;
            long at = index++;
            long number = global++;
            cursors[next] = sample.CursorAfter!;
            next = Advance(next, finished);
            sample.Epoch = epoch;
            sample.Index = at;
            sample.Global = number;
            if (options.Slice is { } slice && !slice.Contains(number))
            {
                sample.Dispose();
                continue;
            }
            sample.PositionAfter = new DataPosition(epoch, index, next, cursors.ToArray(), fingerprint, global);
            sample.Sequence = sequence++;
            try
            {
                await inFlight.WaitAsync(ct).ConfigureAwait(false);
                await output.WriteAsync(sample, ct).ConfigureAwait(false);
            }
            catch
            {
                sample.Dispose();
                throw;
            }
        }
        output.TryComplete();
    }

    /// <summary>The stream after <paramref name="current"/> (cyclic) that has not finished the epoch.</summary>
    private static int Advance(int current, bool[] finished)
    {
        for (int step = 1; step <= finished.Length; step++)
        {
            int candidate = (current + step) % finished.Length;
            if (!finished[candidate]) return candidate;
        }
        return 0;
    }
}
