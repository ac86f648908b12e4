using System.Buffers;
using System.Threading.Channels;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>Sizes of the bounded queues between the stages of a data node.</summary>
public sealed record PipelineBounds(int DecodeWorkers, int RawCapacity, int DecodedCapacity, int OutputBatches)
{
    public static readonly PipelineBounds Default = new(2, 16, 16, 4);

    /// <summary>Samples between reader and assembler at most (queued raw, being decoded, queued decoded).</summary>
    public int Window => RawCapacity + DecodeWorkers + DecodedCapacity;
}

/// <summary>
/// The DecodeAugment and BatchAssembler stages of a data node:
/// <c>readers → raw → decode ×W → decoded → assembler (in read order) → output (bounded)</c>.
/// Samples leave the decoders in any order; the assembler puts them back in the order they were read,
/// so batches are a deterministic function of what the readers read (exact resume in one process). At
/// most <see cref="PipelineBounds.Window"/> samples are between readers and assembler (a semaphore the
/// assembler releases in order), and the output queue holds a few batches; every queue waits when full,
/// so a slow consumer stops the readers and memory stays bounded. The gauges record bytes and peaks.
/// Disposing cancels the stages and returns every buffer still queued to its pool.
/// </summary>
public sealed class BatchPipeline : IAsyncDisposable
{
    private readonly record struct RawItem(long Seq, RawSample Sample, LeaseTracker Lease);
    /// <summary>Pixels null: the sample was bad (or its lease cancelled); it only advances the order.</summary>
    private readonly record struct DecodedItem(long Seq, SampleId Id, byte[]? Pixels);

    private static readonly ArrayPool<byte> SamplePool = ArrayPool<byte>.Shared;

    private readonly DataPipelineParts _parts;
    private readonly long _planVersion;
    private readonly PipelineBounds _bounds;
    private readonly SemaphoreSlim _window;
    private readonly object _order = new();
    private long _nextSeq;
    private readonly Channel<RawItem> _raw;
    private readonly Channel<DecodedItem> _decoded;
    private readonly Channel<PixelBatch> _output;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _stages;

    public StageGauge RawBytes { get; } = new("raw");
    public StageGauge DecodedBytes { get; } = new("decoded");
    public StageGauge OutputBytes { get; } = new("output");

    public long BatchesProduced;
    public long SamplesProduced;
    public long BadSamples;

    public BatchPipeline(DataPipelineParts parts, PipelineBounds bounds, long planVersion)
    {
        _parts = parts;
        _bounds = bounds;
        _planVersion = planVersion;
        _window = new SemaphoreSlim(bounds.Window, bounds.Window);
        // Both channels can hold the whole window, so writes into them never wait: the window is the bound.
        _raw = Channel.CreateBounded<RawItem>(new BoundedChannelOptions(bounds.Window) { FullMode = BoundedChannelFullMode.Wait });
        _decoded = Channel.CreateBounded<DecodedItem>(new BoundedChannelOptions(bounds.Window) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        _output = Channel.CreateBounded<PixelBatch>(new BoundedChannelOptions(bounds.OutputBatches) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = true });
        var workers = Enumerable.Range(0, bounds.DecodeWorkers).Select(_ => Task.Run(DecodeLoop)).ToArray();
        var closeDecoded = Task.WhenAll(workers).ContinueWith(t => _decoded.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        _stages = Task.WhenAll(closeDecoded, Task.Run(AssembleLoop));
    }

    public DataShape Shape => _parts.Shape;

    /// <summary>Completes (or faults, when a stage crashed) once the stages stop.</summary>
    public Task Completion => _stages;

    /// <summary>Hands one read sample to the decoders; waits while the window is full.</summary>
    public async ValueTask WriteAsync(RawSample sample, LeaseTracker lease, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        await _window.WaitAsync(linked.Token);
        lease.Emitted(sample.Id.Index);
        RawBytes.Add(sample.Encoded.Length);
        // Sequence number and enqueue together, so the order has no holes.
        lock (_order)
        {
            if (!_raw.Writer.TryWrite(new RawItem(_nextSeq, sample, lease)))
            {
                RawBytes.Remove(sample.Encoded.Length);
                _window.Release();
                lease.Decoded(false, sample.Id.Index);
                throw new OperationCanceledException("the data pipeline is shutting down");
            }
            _nextSeq++;
        }
    }

    public ChannelReader<PixelBatch> Output => _output.Reader;

    public IReadOnlyList<QueueDepth> Depths(string node) =>
    [
        new(node, "raw", _raw.Reader.Count, _bounds.Window),
        new(node, "decoded", _decoded.Reader.Count, _bounds.Window),
        new(node, "batches", _output.Reader.Count, _bounds.OutputBatches),
    ];

    /// <summary>Upper bound of the bytes this node's pipeline holds, given the largest encoded sample:
    /// the window of samples (each at most encoded + decoded), the batch being assembled, the output queue.</summary>
    public long BoundBytes(long maxEncodedSample)
    {
        long sample = _parts.Shape.SampleBytes, batch = sample * _parts.Shape.BatchSize;
        return (long)_bounds.Window * (maxEncodedSample + sample) + batch * (_bounds.OutputBatches + 1);
    }

    private async Task DecodeLoop()
    {
        var ct = _cts.Token;
        int bytes = _parts.Shape.SampleBytes;
        await foreach (var item in _raw.Reader.ReadAllAsync(ct))
        {
            RawBytes.Remove(item.Sample.Encoded.Length);
            byte[]? pixels = null;
            if (!item.Lease.IsCancelled)
            {
                pixels = SamplePool.Rent(bytes);
                DecodedBytes.Add(bytes);
                string? bad;
                try { bad = _parts.Decoder.Decode(item.Sample, item.Lease.Lease.Seed, pixels.AsSpan(0, bytes)); }
                catch (Exception e) { bad = $"decoder crashed: {e.Message}"; }
                if (bad is not null)
                {
                    SamplePool.Return(pixels);
                    DecodedBytes.Remove(bytes);
                    pixels = null;
                    Interlocked.Increment(ref BadSamples);
                }
            }
            item.Lease.Decoded(pixels is not null, item.Sample.Id.Index);
            if (!_decoded.Writer.TryWrite(new DecodedItem(item.Seq, item.Sample.Id, pixels)) && pixels is not null)
            {
                SamplePool.Return(pixels);   // only when shutting down (the channel holds the whole window)
                DecodedBytes.Remove(bytes);
            }
        }
    }

    private async Task AssembleLoop()
    {
        var ct = _cts.Token;
        var shape = _parts.Shape;
        int bytes = shape.SampleBytes;
        var pending = new Dictionary<long, DecodedItem>();
        long next = 0;
        var ids = new SampleId[shape.BatchSize];
        PixelBatch? batch = null;
        int n = 0;
        try
        {
            await foreach (var item in _decoded.Reader.ReadAllAsync(ct))
            {
                pending[item.Seq] = item;
                while (pending.Remove(next, out var d))
                {
                    next++;
                    _window.Release();
                    if (d.Pixels is null) continue;
                    if (n == 0)
                    {
                        ids = new SampleId[shape.BatchSize];
                        batch = PixelBatch.Rent(shape.BatchSize, shape.Height, shape.Width, _planVersion, ids);
                        long held = batch.ByteLength;
                        OutputBytes.Add(held);
                        batch.OnRelease(() => OutputBytes.Remove(held));   // whoever disposes it, wherever
                    }
                    d.Pixels.AsSpan(0, bytes).CopyTo(batch!.Image(n));
                    ids[n++] = d.Id;
                    SamplePool.Return(d.Pixels);
                    DecodedBytes.Remove(bytes);
                    if (n < shape.BatchSize) continue;
                    var full = batch;
                    batch = null;
                    n = 0;
                    try { await _output.Writer.WriteAsync(full, ct); }
                    catch { full.Dispose(); throw; }
                    Interlocked.Increment(ref BatchesProduced);
                    Interlocked.Add(ref SamplesProduced, shape.BatchSize);
                }
            }
            _output.Writer.TryComplete();
        }
        catch (Exception e)
        {
            _output.Writer.TryComplete(e is OperationCanceledException ? null : e);
            throw;
        }
        finally
        {
            batch?.Dispose();
            foreach (var d in pending.Values)
                if (d.Pixels is not null) { SamplePool.Return(d.Pixels); DecodedBytes.Remove(bytes); }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _raw.Writer.TryComplete();
        try { await _stages.WaitAsync(TimeSpan.FromSeconds(10)); } catch { /* cancelled or faulted: drained below */ }
        while (_raw.Reader.TryRead(out var r)) { RawBytes.Remove(r.Sample.Encoded.Length); r.Lease.Decoded(false, r.Sample.Id.Index); }
        while (_decoded.Reader.TryRead(out var d))
            if (d.Pixels is not null) { SamplePool.Return(d.Pixels); DecodedBytes.Remove(_parts.Shape.SampleBytes); }
        while (_output.Reader.TryRead(out var b)) b.Dispose();
        _cts.Dispose();
    }
}
