using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using LiteVae.Data.Order;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// The data pipeline, the one every run uses (training in one process or on data nodes, evaluation, the
/// benches): a caller asks for spans of the run's sample order (<see cref="RequestAsync"/>: the samples
/// numbered [start, start + span)); <c>readers</c> read each sample at random from its shard, <c>decode
/// workers</c> decode and transform each straight into its slot of the span's batch buffer, and finished
/// batches come out of <see cref="Batches"/> in request order, bad samples left out and listed. A batch's
/// content depends only on its span, the order and the transform, never on timing or worker counts. At most
/// <c>prefetch</c> batches are filled at once and <c>prefetch</c> wait for the consumer, and readers stay at
/// most a few samples ahead of the decoders, so memory is bounded whatever the speeds.
/// </summary>
public sealed class DataPipeline : IAsyncDisposable
{
    /// <summary>One requested span being filled.</summary>
    private sealed class Job(long start, int span, byte[] buffer)
    {
        public readonly long Start = start;
        public readonly byte[] Buffer = buffer;
        public readonly SampleInfo?[] Good = new SampleInfo?[span];
        public readonly SkippedSample?[] Bad = new SkippedSample?[span];
        public int Remaining = span;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly record struct Work(Job Job, int Slot, long Number, SampleRef Ref);
    private readonly record struct Read(Work Work, RawSample Sample);

    private readonly DataPipelineOptions _options;
    private readonly CancellationTokenSource _cts = new();
    private readonly SemaphoreSlim _filling;
    private readonly Channel<Job> _jobs = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Channel<Work> _reads = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Channel<Read> _decodes;
    private readonly Channel<Batch> _batches;
    private readonly ReadContext _context;
    private readonly int _sampleBytes;
    private readonly Task _completion;
    private Exception? _failure;

    public DataStats Stats { get; } = new();
    public BufferPool Pool { get; }
    public DataPipelineOptions Options => _options;

    /// <summary>Finished batches in request order; the consumer disposes each.</summary>
    public ChannelReader<Batch> Batches => _batches.Reader;
    /// <summary>Completes when every requested batch was handed out (after <see cref="Complete"/>); faulted with the first error.</summary>
    public Task Completion => _completion;

    /// <summary>Items waiting in each stage's queue: <c>read</c> (samples to read), <c>decode</c> (samples read,
    /// waiting for a decoder), <c>batch</c> (finished batches for the consumer). Cheap and thread-safe.</summary>
    public IReadOnlyList<KeyValuePair<string, Func<long>>> QueueDepths =>
    [
        new("read", () => _reads.Reader.Count),
        new("decode", () => _decodes.Reader.Count),
        new("batch", () => _batches.Reader.Count),
    ];

    private DataPipeline(DataPipelineOptions options)
    {
        _options = options;
        int r = options.Transform.Resolution;
        _sampleBytes = 3 * r * r;
        Pool = new BufferPool(checked(options.MaxBatchSize * _sampleBytes), 2 * options.Prefetch + 2);
        _filling = new SemaphoreSlim(options.Prefetch);
        _decodes = Channel.CreateBounded<Read>(new BoundedChannelOptions(options.Readers + 2 * options.DecodeWorkers) { FullMode = BoundedChannelFullMode.Wait });
        _batches = Channel.CreateBounded<Batch>(new BoundedChannelOptions(options.Prefetch) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = true });
        _context = new ReadContext
        {
            Report = _ => { },   // a sample's own problem comes back on the sample and is counted once, when decoded
            MaxEncodedBytes = options.MaxEncodedBytes,
            OpenRetries = options.OpenRetries,
            RetryDelay = options.RetryDelay,
            Http = options.Http,
            Cancellation = _cts.Token,
        };
        // Readers block on file or HTTP reads and decoders on CPU work, both on pool threads: raise the pool's
        // minimum (never lower it) so the pipeline does not wait for the pool to grow at start.
        ThreadPool.GetMinThreads(out int workers, out int io);
        int needed = options.Readers + options.DecodeWorkers + 4;
        if (workers < needed) ThreadPool.SetMinThreads(needed, io);

        var ct = _cts.Token;
        var readers = Enumerable.Range(0, options.Readers).Select(_ => Guard(() => ReadLoop(ct))).ToArray();
        var readersDone = Task.WhenAll(readers).ContinueWith(_ => _decodes.Writer.TryComplete(), TaskScheduler.Default);
        var decoders = Enumerable.Range(0, options.DecodeWorkers).Select(_ => Guard(() => DecodeLoop(ct))).ToArray();
        var emitter = Guard(() => EmitLoop(ct));
        _completion = Finish([.. readers, readersDone, .. decoders, emitter]);
    }

    public static DataPipeline Start(DataPipelineOptions options)
    {
        options.Validate();
        return new DataPipeline(options);
    }

    /// <summary>
    /// Asks for the batch of the samples numbered [<paramref name="start"/>, <paramref name="start"/> + <paramref name="span"/>);
    /// waits while <c>prefetch</c> batches are being filled. One caller at a time: batches come out in the order asked.
    /// </summary>
    public async ValueTask RequestAsync(long start, int span, CancellationToken ct = default)
    {
        if (span < 1 || span > _options.MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(span), $"span {span}: must be 1 to {_options.MaxBatchSize}.");
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        await _filling.WaitAsync(linked.Token).ConfigureAwait(false);
        var job = new Job(start, span, Pool.Rent());
        for (int i = 0; i < span; i++)
            _reads.Writer.TryWrite(new Work(job, i, start + i, _options.Order.At(start + i)));
        if (!_jobs.Writer.TryWrite(job))
        {
            Pool.Return(job.Buffer);
            throw new InvalidOperationException("the data pipeline was completed or stopped; no more requests.");
        }
    }

    /// <summary>No more requests: <see cref="Batches"/> completes after the last one asked for.</summary>
    public void Complete()
    {
        _jobs.Writer.TryComplete();
        _reads.Writer.TryComplete();
    }

    /// <summary>
    /// Asks for consecutive spans of <paramref name="span"/> samples from <paramref name="start"/> (the last one short
    /// at <paramref name="end"/>) and yields their batches in order; the caller disposes each. For a single consumer
    /// reading straight through (evaluation, benchmarks); use it or <see cref="RequestAsync"/>, not both.
    /// </summary>
    public async IAsyncEnumerable<Batch> ReadSpansAsync(long start, int span, long end = long.MaxValue,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var asking = Task.Run(async () =>
        {
            for (long s = start; s < end; s += span)
                await RequestAsync(s, (int)Math.Min(span, end - s), stop.Token).ConfigureAwait(false);
            Complete();
        }, stop.Token);
        try
        {
            await foreach (var batch in ReadAllAsync(ct).ConfigureAwait(false))
                yield return batch;
        }
        finally
        {
            stop.Cancel();
            try { await asking.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>Batches until the pipeline completes; rethrows the pipeline's error, if any.</summary>
    public async IAsyncEnumerable<Batch> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        while (true)
        {
            bool more;
            try { more = await _batches.Reader.WaitToReadAsync(ct).ConfigureAwait(false); }
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

    private async Task ReadLoop(CancellationToken ct)
    {
        await foreach (var work in _reads.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            var sample = _options.Index.Read(work.Ref.Shard, work.Ref.Index, _context);
            try { await _decodes.Writer.WriteAsync(new Read(work, sample), ct).ConfigureAwait(false); }
            catch
            {
                sample.Dispose();
                throw;
            }
        }
    }

    private async Task DecodeLoop(CancellationToken ct)
    {
        var scratch = new TransformScratch();
        long seed = _options.Order.Settings.Seed;
        await foreach (var (work, sample) in _decodes.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            var job = work.Job;
            using (sample)
            {
                DataProblem? problem = sample.Problem;
                if (problem is null)
                {
                    try
                    {
                        var key = new SampleKey(seed, work.Ref.Epoch, _options.Order.PositionInEpoch(work.Number));
                        _options.Transform.Apply(sample.Image, key, job.Buffer.AsSpan(work.Slot * _sampleBytes, _sampleBytes), scratch);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        problem = e is BadSampleException bad
                            ? new DataProblem(bad.Reason, sample.Shard, sample.Key, bad.Detail)
                            : new DataProblem(BadReason.CorruptImage, sample.Shard, sample.Key, $"decoder error: {e.GetType().Name}: {e.Message}");
                    }
                }
                if (sample.KeyEscaped) Stats.RecordEscapedKey();
                var r = work.Ref;
                if (problem is null)
                {
                    Stats.RecordGood();
                    job.Good[work.Slot] = new SampleInfo(work.Number, r.Epoch, r.Shard, r.Index, sample.Key);
                }
                else
                {
                    Stats.Record(problem);
                    job.Bad[work.Slot] = new SkippedSample(work.Number, r.Epoch, r.Shard, r.Index, problem.Key, problem.Reason, problem.Detail);
                }
            }
            if (Interlocked.Decrement(ref job.Remaining) == 0) job.Done.TrySetResult();
        }
    }

    private async Task EmitLoop(CancellationToken ct)
    {
        int r = _options.Transform.Resolution;
        await foreach (var job in _jobs.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            try { await job.Done.Task.WaitAsync(ct).ConfigureAwait(false); }
            catch
            {
                Pool.Return(job.Buffer);
                throw;
            }
            // Good samples move up over the slots of skipped ones, keeping their order.
            var good = new List<SampleInfo>(job.Good.Length);
            var bad = new List<SkippedSample>();
            for (int slot = 0; slot < job.Good.Length; slot++)
            {
                if (job.Good[slot] is { } info)
                {
                    if (good.Count != slot)
                        job.Buffer.AsSpan(slot * _sampleBytes, _sampleBytes).CopyTo(job.Buffer.AsSpan(good.Count * _sampleBytes, _sampleBytes));
                    good.Add(info);
                }
                else bad.Add(job.Bad[slot]!);
            }
            var batch = new Batch(job.Start, job.Good.Length, job.Buffer, Pool, r, r, good, bad);
            try { await _batches.Writer.WriteAsync(batch, ct).ConfigureAwait(false); }
            catch
            {
                batch.Dispose();
                throw;
            }
            _filling.Release();
        }
        _batches.Writer.TryComplete();
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
            if (Interlocked.CompareExchange(ref _failure, e, null) is null)
            {
                _batches.Writer.TryComplete(e);
                _cts.Cancel();
            }
        }
    });

    private async Task Finish(Task[] stages)
    {
        await Task.WhenAll(stages).ConfigureAwait(false);
        if (_failure is not null) ExceptionDispatchInfo.Throw(_failure);
    }

    /// <summary>Stops every stage, then drains every queue and returns what it held.</summary>
    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        Complete();
        try { await _completion.ConfigureAwait(false); }
        catch
        {
            // Delivered through Batches / Completion already.
        }
        // Stopped early, the emitter did not complete the output: readers (a node-to-node stream) must see the end.
        _batches.Writer.TryComplete();
        while (_decodes.Reader.TryRead(out var read)) read.Sample.Dispose();
        while (_jobs.Reader.TryRead(out var job)) Pool.Return(job.Buffer);
        while (_batches.Reader.TryRead(out var batch)) batch.Dispose();
        _cts.Dispose();
    }
}
