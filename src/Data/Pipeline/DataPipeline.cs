using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using LiteVae.Data.Pipeline.Stages;
using LiteVae.Data.Shards;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// The in-process data pipeline: S stream readers (at most R reading at once) → sequencer → W decode
/// workers → batch assembler, joined by bounded channels (FullMode.Wait), so memory stays bounded
/// whatever the speeds. Batches come out of <see cref="Batches"/> in the logical order, which
/// depends only on the seed, epoch and shard list (see <see cref="DataPosition"/>). Bad samples
/// are skipped and counted in <see cref="Stats"/>; too many bad samples fault the pipeline with a
/// <see cref="DataQualityException"/>. DisposeAsync stops every stage and returns all buffers.
/// </summary>
public sealed class DataPipeline : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly Channel<StreamItem>[] _streams;
    private readonly Channel<RawSample> _decodeInput;
    private readonly Channel<DecodedSample> _decodeOutput;
    private readonly Channel<Batch> _batches;
    private readonly Task _completion;
    private Exception? _failure;

    public DataPipelineOptions Options { get; }
    public DataStats Stats { get; }
    public BufferPool Pool { get; }
    public DataPosition StartPosition { get; }
    /// <summary>Batches in order. Each must be disposed by the consumer.</summary>
    public ChannelReader<Batch> Batches => _batches.Reader;
    /// <summary>Completes when the pipeline stops; faulted with the first error.</summary>
    public Task Completion => _completion;

    /// <summary>
    /// Items waiting now in each stage's input queue: <c>read</c> (encoded samples from all streams),
    /// <c>decode</c> (samples for the decode workers), <c>assemble</c> (decoded samples for the batch
    /// assembler) and <c>batch</c> (finished batches for the consumer). Cheap and thread-safe: the
    /// queue-depth metrics read them from the exporter's thread.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Func<long>>> QueueDepths =>
    [
        new("read", () => _streams.Sum(c => (long)c.Reader.Count)),
        new("decode", () => _decodeInput.Reader.Count),
        new("assemble", () => _decodeOutput.Reader.Count),
        new("batch", () => _batches.Reader.Count),
    ];

    private DataPipeline(DataPipelineOptions options, DataPosition start, DataStats stats)
    {
        // Readers block on file/HTTP reads and decoders on CPU work, both on pool threads; with fewer
        // pool threads than stages, the pool would add threads slowly and the pipeline would stall at
        // start. Raising the minimum (never lowering it) avoids that ramp.
        ThreadPool.GetMinThreads(out int workers, out int io);
        int needed = options.Streams + options.DecodeWorkers + 4;
        if (workers < needed) ThreadPool.SetMinThreads(needed, io);

        Options = options;
        Stats = stats;
        StartPosition = start;
        int sampleBytes = 3 * options.Transform.Resolution * options.Transform.Resolution;
        Pool = new BufferPool(checked(options.BatchSize * sampleBytes), options.BatchQueue + 2);
        var wait = BoundedChannelFullMode.Wait;
        _streams = Enumerable.Range(0, options.Streams)
            .Select(_ => Channel.CreateBounded<StreamItem>(new BoundedChannelOptions(options.StreamQueue) { FullMode = wait, SingleReader = true, SingleWriter = true }))
            .ToArray();
        _decodeInput = Channel.CreateBounded<RawSample>(new BoundedChannelOptions(options.DecodeQueue) { FullMode = wait, SingleWriter = true });
        _decodeOutput = Channel.CreateBounded<DecodedSample>(new BoundedChannelOptions(options.DecodeQueue) { FullMode = wait, SingleReader = true });
        _batches = Channel.CreateBounded<Batch>(new BoundedChannelOptions(options.BatchQueue) { FullMode = wait, SingleWriter = true });

        var ct = _cts.Token;
        var context = new ReadContext
        {
            Report = stats.Record,
            MaxEncodedBytes = options.MaxEncodedBytes,
            OpenRetries = options.OpenRetries,
            RetryDelay = options.RetryDelay,
            Http = options.Http,
            Cancellation = ct,
        };
        var readSlots = new SemaphoreSlim(options.Readers);
        var inFlight = new SemaphoreSlim(options.DecodeQueue);

        var readers = Enumerable.Range(0, options.Streams)
            .Select(s => Guard(() => new StreamReaderStage(s, options, context, readSlots).RunAsync(start, _streams[s].Writer, ct)))
            .ToArray();
        var sequencer = Guard(() => new SequencerStage(options, inFlight)
            .RunAsync(start, _streams.Select(c => c.Reader).ToArray(), _decodeInput.Writer, ct));
        var decoders = Enumerable.Range(0, options.DecodeWorkers)
            .Select(_ => Guard(() => new DecodeStage(options, stats).RunAsync(_decodeInput.Reader, _decodeOutput.Writer, ct)))
            .ToArray();
        var decodersDone = Task.WhenAll(decoders).ContinueWith(_ => _decodeOutput.Writer.TryComplete(), TaskScheduler.Default);
        var assembler = Guard(() => new BatchAssemblerStage(options, Pool, inFlight).RunAsync(_decodeOutput.Reader, _batches.Writer, ct));
        _completion = Finish([.. readers, sequencer, .. decoders, decodersDone, assembler]);
    }

    /// <summary>Starts reading. <paramref name="resumeFrom"/> is a position saved from a run with the same
    /// order settings (same shard list, seed, streams, shuffle); null starts at epoch 0.</summary>
    public static DataPipeline Start(DataPipelineOptions options, DataPosition? resumeFrom = null, DataStats? stats = null)
    {
        options.Validate();
        string fingerprint = options.OrderFingerprint;
        var start = resumeFrom ?? DataPosition.StartOf(0, options.Streams, fingerprint);
        if (start.OrderFingerprint != fingerprint)
            throw new ArgumentException(
                $"the saved data position belongs to another data order (fingerprint {start.OrderFingerprint}, now {fingerprint}): " +
                "the shard list, seed, streams or shuffle settings changed. Keep them, or start the data from the beginning.");
        if (start.Streams.Count != options.Streams)
            throw new ArgumentException($"the saved data position has {start.Streams.Count} streams, the options {options.Streams}.");
        if (options.MaxEpochs is int max && start.Epoch >= max)
            throw new ArgumentException($"the saved data position is in epoch {start.Epoch}, past the last epoch {max - 1}.");
        return new DataPipeline(options, start, stats ?? new DataStats());
    }

    /// <summary>Batches until the pipeline completes; rethrows the pipeline's error, if any.</summary>
    public async IAsyncEnumerable<Batch> ReadAllAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        while (true)
        {
            bool more;
            try
            {
                more = await _batches.Reader.WaitToReadAsync(ct).ConfigureAwait(false);
            }
            catch (ChannelClosedException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
            if (!more)
            {
                if (_failure is not null) ExceptionDispatchInfo.Throw(_failure);
                yield break;
            }
            while (_batches.Reader.TryRead(out var batch))
                yield return batch;
        }
    }

    private Task Guard(Func<Task> stage) => Task.Run(async () =>
    {
        try
        {
            await stage().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Fail(e);
        }
    });

    private void Fail(Exception e)
    {
        if (Interlocked.CompareExchange(ref _failure, e, null) is null)
        {
            _batches.Writer.TryComplete(e);
            _cts.Cancel();
        }
    }

    private async Task Finish(Task[] stages)
    {
        await Task.WhenAll(stages).ConfigureAwait(false);
        if (_failure is not null) ExceptionDispatchInfo.Throw(_failure);
    }

    /// <summary>Stops all stages, then drains every channel and disposes what it held.</summary>
    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        try
        {
            await _completion.ConfigureAwait(false);
        }
        catch
        {
            // The failure was already delivered through Batches / Completion.
        }
        foreach (var c in _streams)
            while (c.Reader.TryRead(out var item)) item.Sample?.Dispose();
        while (_decodeInput.Reader.TryRead(out var raw)) raw.Dispose();
        while (_decodeOutput.Reader.TryRead(out var decoded)) decoded.Dispose();
        while (_batches.Reader.TryRead(out var batch)) batch.Dispose();
        _cts.Dispose();
    }
}
