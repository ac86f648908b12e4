using LiteVae.Data;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Telemetry;

/// <summary>
/// Connects a data pipeline (src/Data knows nothing of telemetry) to the metrics: its queue depths feed
/// <c>litevae.data.queue.depth</c> per stage, and every bad sample it skips counts in
/// <c>litevae.data.bad_samples</c> by reason, its good samples <c>litevae.data.samples</c>. Dispose when the pipeline is disposed.
/// </summary>
public sealed class PipelineTelemetry : IDisposable
{
    private readonly DataStats _stats;
    private readonly LiteVaeTelemetry _telemetry;
    private readonly string _node;
    private readonly List<IDisposable> _queues = [];

    private PipelineTelemetry(DataPipeline pipeline, string node, LiteVaeTelemetry telemetry)
    {
        _stats = pipeline.Stats;
        _telemetry = telemetry;
        _node = node;
        // Finished batches are the pipeline's big items: their bytes are known (one pooled buffer each).
        long batchBytes = pipeline.Pool.BufferLength;
        foreach (var (stage, depth) in pipeline.QueueDepths)
            _queues.Add(telemetry.ObserveQueue(stage, node, depth, stage == "batch" ? () => depth() * batchBytes : null));
        _queues.Add(telemetry.ObserveSamples(node, () => _stats.Good));
        _stats.Problem += OnProblem;
    }

    public static PipelineTelemetry Observe(DataPipeline pipeline, string node, LiteVaeTelemetry? telemetry = null) =>
        new(pipeline, node, telemetry ?? LiteVaeTelemetry.Default);

    private void OnProblem(DataProblem p) =>
        _telemetry.BadSamples.Add(1, new KeyValuePair<string, object?>(TelemetryTags.Reason, p.Reason.Name()),
            new KeyValuePair<string, object?>(TelemetryTags.Node, _node));

    public void Dispose()
    {
        _stats.Problem -= OnProblem;
        foreach (var q in _queues) q.Dispose();
        _queues.Clear();
    }
}
