using Akka.Actor;
using LiteVae.Model.Metrics;

namespace LiteVae.Actors.Protocol;


/// <summary>Between Evaluators (eval nodes) and the Coordinator.</summary>
public static class EvalProtocol
{
    /// <summary>Evaluator → Coordinator, every heartbeat: registers the evaluator.</summary>
    public sealed record EvaluatorHeartbeat(IActorRef Evaluator, string Node, string? RunningJob) : ILiteVaeMessage;

    /// <summary>Coordinator → Evaluator: evaluate a checkpoint on a data set (null = the experiment's eval set).
    /// <paramref name="Home"/>: where the run lives (an eval node that does not share that disk fetches the checkpoint).</summary>
    public sealed record RunEvaluation(
        string JobId, string CheckpointPath, string? Data, string ExperimentHocon, string RunDir, string? TraceParent,
        TransferProtocol.RunHome? Home = null)
        : ILiteVaeMessage, ITraced;

    public sealed record EvaluationStarted(string JobId, string Node) : ILiteVaeMessage;

    public sealed record EvaluationFinished(
        string JobId, bool Ok, string? Error, IReadOnlyList<MetricValue> Metrics, string? ReportPath, int Images,
        double Seconds) : ILiteVaeMessage
    {
        public bool Equals(EvaluationFinished? o) =>
            o is not null && JobId == o.JobId && Ok == o.Ok && Error == o.Error && Metrics.SequenceEqual(o.Metrics) &&
            ReportPath == o.ReportPath && Images == o.Images && Seconds.Equals(o.Seconds);

        public override int GetHashCode() => JobId.GetHashCode();
    }
}
