using System.Buffers;
using System.Threading.Channels;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>Sizes of the bounded queues between the stages of a data node.</summary>
public sealed record PipelineBounds(int DecodeWorkers, int RawCapacity, int DecodedCapacity, int OutputBatches)
{
    public static readonly PipelineBounds Default = new(2, 16, 16, 4);
}

/// <summary>
/// The DecodeAugment and BatchAssembler stages of a data node:
/// <c>readers → raw (bounded) → decode ×W → decoded (bounded) → assembler → output (bounded)</c>.
/// Every queue waits when full, so a slow consumer stops the readers and memory stays bounded; the
/// gauges record the bytes each stage holds and their peaks. Disposing cancels the stages and returns
/// every buffer still queued to its pool.
/// </summary>
public sealed class BatchPipeline : IAsyncDisposable
{
    public readonly record struct RawItem(RawSample Sample, LeaseTracker Lease);
    private readonly record struct DecodedItem(SampleId Id, byte[] Pixels);

    private static readonly ArrayPool<byte> SamplePool = ArrayPool<byte>.Shared;

    private readonly DataPipelineParts _parts;
    private readonly long _planVersion;
    private readonly Channel<RawItem> _raw;
    private readonly Channel<DecodedItem> _decoded;
    private readonly Channel<PixelBatch> _output;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _stages;
    private readonly PipelineBounds _bounds;

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
        _raw = Channel.CreateBounded<RawItem>(new BoundedChannelOptions(bounds.RawCapacity) { FullMode = BoundedChannelFullMode.Wait });
        _decoded = Channel.CreateBounded<DecodedItem>(new BoundedChannelOptions(bounds.DecodedCapacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        _output = Channel.CreateBounded<PixelBatch>(new BoundedChannelOptions(bounds.OutputBatches) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = true });
        var workers = Enumerable.Range(0, bounds.DecodeWorkers).Select(_ => Task.Run(DecodeLoop)).ToArray();
        var closeDecoded = Task.WhenAll(workers).ContinueWith(t => _decoded.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        _stages = Task.WhenAll(closeDecoded, Task.Run(AssembleLoop));
    }

    public DataShape Shape => _parts.Shape;

    /// <summary>Completes (or faults, when a stage crashed) once the stages stop.</summary>
    public Task Completion => _stages;

    /// <summary>Hands one read sample to the decoders; waits while the raw queue is full.</summary>
    public async ValueTask WriteAsync(RawSample sample, LeaseTracker lease, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        lease.Emitted(sample.Id.Index);
        RawBytes.Add(sample.Encoded.Length);
        try
        {
            await _raw.Writer.WriteAsync(new RawItem(sample, lease), linked.Token);
        }
        catch
        {
            RawBytes.Remove(sample.Encoded.Length);
            lease.Decoded(false, sample.Id.Index);
            throw;
        }
    }

    public ChannelReader<PixelBatch> Output => _output.Reader;

    public IReadOnlyList<QueueDepth> Depths(string node) =>
    [
        new(node, "raw", _raw.Reader.Count, _bounds.RawCapacity),
        new(node, "decoded", _decoded.Reader.Count, _bounds.DecodedCapacity),
        new(node, "batches", _output.Reader.Count, _bounds.OutputBatches),
    ];

    /// <summary>Upper bound of the bytes this node's pipeline can hold, given the largest encoded sample.</summary>
    public long BoundBytes(long maxEncodedSample)
    {
        long sample = _parts.Shape.SampleBytes, batch = sample * _parts.Shape.BatchSize;
        return maxEncodedSample * (_bounds.RawCapacity + _bounds.DecodeWorkers)
               + sample * (_bounds.DecodedCapacity + _bounds.DecodeWorkers)
               + batch * (_bounds.OutputBatches + 1);   // + the batch being assembled
    }

    private async Task DecodeLoop()
    {
        var ct = _cts.Token;
        int bytes = _parts.Shape.SampleBytes;
        await foreach (var item in _raw.Reader.ReadAllAsync(ct))
        {
            RawBytes.Remove(item.Sample.Encoded.Length);
            if (item.Lease.IsCancelled) { item.Lease.Decoded(false, item.Sample.Id.Index); continue; }
            var pixels = SamplePool.Rent(bytes);
            DecodedBytes.Add(bytes);
            string? bad;
            try { bad = _parts.Decoder.Decode(item.Sample, item.Lease.Lease.Seed, pixels.AsSpan(0, bytes)); }
            catch (Exception e) { bad = $"decoder crashed: {e.Message}"; }
            if (bad is not null)
            {
                SamplePool.Return(pixels);
                DecodedBytes.Remove(bytes);
                Interlocked.Increment(ref BadSamples);
                item.Lease.Decoded(false, item.Sample.Id.Index);
                continue;
            }
            try
            {
                await _decoded.Writer.WriteAsync(new DecodedItem(item.Sample.Id, pixels), ct);
            }
            catch
            {
                SamplePool.Return(pixels);
                DecodedBytes.Remove(bytes);
                throw;
            }
            item.Lease.Decoded(true, item.Sample.Id.Index);
        }
    }

    private async Task AssembleLoop()
    {
        var ct = _cts.Token;
        var shape = _parts.Shape;
        int bytes = shape.SampleBytes;
        var ids = new SampleId[shape.BatchSize];
        PixelBatch? batch = null;
        int n = 0;
        try
        {
            await foreach (var d in _decoded.Reader.ReadAllAsync(ct))
            {
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
        }
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _raw.Writer.TryComplete();
        try { await _stages.WaitAsync(TimeSpan.FromSeconds(10)); } catch { /* cancelled or faulted: drained below */ }
        while (_raw.Reader.TryRead(out var r)) { RawBytes.Remove(r.Sample.Encoded.Length); r.Lease.Decoded(false, r.Sample.Id.Index); }
        while (_decoded.Reader.TryRead(out var d)) { SamplePool.Return(d.Pixels); DecodedBytes.Remove(_parts.Shape.SampleBytes); }
        while (_output.Reader.TryRead(out var b)) b.Dispose();
        _cts.Dispose();
    }
}
