using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// Held-out images in evaluation order: the data pipeline with the eval transform (resize short side,
/// centre crop), every shard once, in list order, paced by the pipeline's prefetch. Used by
/// <see cref="EvalJob"/> and `litevae latent-stats`. One thread reads it (it owns the batches' scopes).
/// </summary>
internal sealed class EvalImageStream : IDisposable
{
    private readonly CancellationTokenSource _stop = new();

    private EvalImageStream(ShardIndex index, DataPipeline pipeline, int batchSize)
    {
        (Index, Pipeline) = (index, pipeline);
        var ct = _stop.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                for (long start = 0; start < index.TotalSamples; start += batchSize)
                    await pipeline.RequestAsync(start, (int)Math.Min(batchSize, index.TotalSamples - start), ct);
                pipeline.Complete();
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException) { }
        }, ct);
    }

    public ShardIndex Index { get; }
    public DataPipeline Pipeline { get; }

    /// <summary>Indexes the shards (refusing a source with no readable image) and starts reading.</summary>
    public static EvalImageStream Start(DataConfig data)
    {
        var index = data.LoadIndex(_ => { });
        if (index.TotalSamples == 0)
            throw new InvalidDataException($"{string.Join(", ", data.Source)}: no images could be read" +
                (index.Problems.Count > 0 ? $" (e.g. {index.Problems[0]})" : " (the shards hold no samples)") +
                ". Check the path; 'litevae shards check <shards>' lists what is wrong with a shard.");
        var pipeline = DataPipeline.Start(data.CreatePipelineOptions(index, DataUse.Eval));
        return new EvalImageStream(index, pipeline, data.BatchSize);
    }

    /// <summary>The next batch, blocking this thread; null at the end of the data. A pipeline failure is rethrown.</summary>
    public Batch? Next(CancellationToken ct)
    {
        var reader = Pipeline.Batches;
        while (true)
        {
            if (reader.TryRead(out var batch))
                return batch;
            bool more;
            try
            {
                more = reader.WaitToReadAsync(ct).AsTask().GetAwaiter().GetResult();
            }
            catch (ChannelClosedException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
            if (!more)
            {
                Pipeline.Completion.GetAwaiter().GetResult(); // rethrows a pipeline failure
                return null;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        Pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _stop.Dispose();
    }
}
