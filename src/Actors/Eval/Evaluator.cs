using LiteVae.Model.Metrics;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using static LiteVae.Actors.Protocol.EvalProtocol;

namespace LiteVae.Actors.Eval;

/// <summary>What an evaluation produced.</summary>
public sealed record EvalOutcome(IReadOnlyList<MetricValue> Metrics, string? ReportPath, int Images);

/// <summary>
/// One evaluation job (the Host adapts the metrics of src/Model): built from the checkpoint's own config,
/// it processes one batch per <see cref="Step"/> so the Evaluator's mailbox stays responsive.
/// </summary>
public interface IEvalJob : IDisposable
{
    /// <summary>Evaluates the next batch; false when the data set is exhausted.</summary>
    bool Step();

    EvalOutcome Finish();
}

public delegate IEvalJob EvalJobFactory(RunEvaluation request);

/// <summary>Published on the eval node's local event stream when a job ends (`litevae train` prints it).</summary>
public sealed record EvaluationDone(RunEvaluation Request, EvaluationFinished Result) : INoSerializationVerificationNeeded;

/// <summary>
/// Runs evaluation jobs on an eval node, on its own pinned thread, one batch per self-sent message. Any
/// failure of a job is reported to the Coordinator as a failed job; training never depends on this actor.
/// </summary>
public sealed class Evaluator : ReceiveActor, IWithTimers
{
    private sealed class Heartbeat : INoSerializationVerificationNeeded { public static readonly Heartbeat Instance = new(); }
    private sealed class EvalStep : INoSerializationVerificationNeeded { public static readonly EvalStep Instance = new(); }

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _node;
    private readonly EvalJobFactory _factory;
    private readonly IActorRef _coordinator;
    private readonly TimeSpan _heartbeat;
    private readonly Transfer.StorageSettings? _storage;
    private RunEvaluation? _request;
    private IEvalJob? _job;
    private System.Diagnostics.Stopwatch _clock = new();
    private System.Diagnostics.Activity? _span;   // the job's span, child of the request's (held across EvalSteps)

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="storage">Whether this node shares the run's directory; when it does not, each job's checkpoint is
    /// fetched from the run's home into this node's copy of the run first, and its reports go there (null: always shared).</param>
    public Evaluator(string node, EvalJobFactory factory, IActorRef coordinator, TimeSpan heartbeat, Transfer.StorageSettings? storage = null)
    {
        (_node, _factory, _coordinator, _heartbeat, _storage) = (node, factory, coordinator, heartbeat, storage);
        Receive<Heartbeat>(_ => _coordinator.Tell(new EvaluatorHeartbeat(Self, _node, _request?.JobId)));
        Receive<RunEvaluation>(HandleRun);
        Receive<Transfer.Fetched>(f =>
        {
            if (_request is null || f.Request.Tag is not string job || job != _request.JobId) return;
            _log.Info("evaluation {0}: checkpoint fetched to {1} ({2:F1} MiB copied in {3:F1} s)", job, f.Path, f.Bytes / 1048576.0, f.Seconds);
            _request = _request with { CheckpointPath = f.Path, RunDir = _storage!.LocalRunDir(_request.Home, _request.RunDir) };
            Self.Tell(EvalStep.Instance);
        });
        Receive<Transfer.FetchFailed>(f =>
        {
            if (_request is null || f.Request.Tag is not string job || job != _request.JobId) return;
            Done(new EvaluationFinished(job, false, $"eval node {_node} could not fetch the checkpoint {f.Request.Checkpoint} from the run's home: {f.Reason}",
                [], null, 0, _clock.Elapsed.TotalSeconds));
        });
        Receive<EvalStep>(_ => DoStep());
    }

    public static Props Props(string node, EvalJobFactory factory, IActorRef coordinator, TimeSpan heartbeat, Transfer.StorageSettings? storage = null) =>
        Akka.Actor.Props.Create(() => new Evaluator(node, factory, coordinator, heartbeat, storage));

    protected override void PreStart() => Timers.StartPeriodicTimer("hb", Heartbeat.Instance, TimeSpan.Zero, _heartbeat);

    protected override void PostStop()
    {
        if (_request is not null)
        {
            _coordinator.Tell(new EvaluationFinished(_request.JobId, false, "the evaluator stopped", [], null, 0, 0));
            _span.Fail("the evaluator stopped");
        }
        _span.EndHeld();
        _job?.Dispose();
    }

    private void HandleRun(RunEvaluation r)
    {
        if (_request is not null)
        {
            _coordinator.Tell(new EvaluationFinished(r.JobId, false, $"evaluator on {_node} is busy with {_request.JobId}", [], null, 0, 0));
            return;
        }
        _request = r;
        _clock = System.Diagnostics.Stopwatch.StartNew();
        _span = LiteVaeTelemetry.Default.Eval.StartHeld("eval job", System.Diagnostics.ActivityKind.Consumer, r.TraceParent,
        [
            new(TelemetryTags.JobId, r.JobId), new(TelemetryTags.Checkpoint, r.CheckpointPath), new(TelemetryTags.Node, _node),
            new(TelemetryTags.RunId, Path.GetFileName(r.RunDir.TrimEnd('/'))), new("litevae.eval.data", r.Data ?? "experiment eval set"),
        ]);
        _coordinator.Tell(new EvaluationStarted(r.JobId, _node));
        _log.Info("evaluation {0} of {1}", r.JobId, r.CheckpointPath);
        if (_storage is { } storage && r.Home is { } home && storage.LocalRunDir(home, r.RunDir) is var local && local != r.RunDir)
        {
            Context.ActorOf(Transfer.CheckpointFetch.Props(new Transfer.FetchRequest(r.CheckpointPath, [home.Server],
                LiteVae.Model.Checkpoints.RunDirectory.CheckpointsOf(local), storage.MayUseInPlace, new LiteVae.Model.Checkpoints.RetentionPolicy(),
                storage, r.JobId)));
            return;   // the first step comes with the checkpoint
        }
        Self.Tell(EvalStep.Instance);
    }

    private void DoStep()
    {
        if (_request is null) return;
        try
        {
            _job ??= _factory(_request);   // heavy (model load): on the first step, not on receipt
            if (_job.Step())
            {
                Self.Tell(EvalStep.Instance);
                return;
            }
            var outcome = _job.Finish();
            Done(new EvaluationFinished(_request.JobId, true, null, outcome.Metrics, outcome.ReportPath, outcome.Images, _clock.Elapsed.TotalSeconds));
        }
        catch (Exception e)
        {
            _log.Error(e, "evaluation {0} failed", _request.JobId);
            Done(new EvaluationFinished(_request.JobId, false, e.GetBaseException().Message, [], null, 0, _clock.Elapsed.TotalSeconds));
        }
    }

    private void Done(EvaluationFinished f)
    {
        LiteVaeTelemetry.Default.EvalDuration.Record(f.Seconds, new KeyValuePair<string, object?>(TelemetryTags.Outcome, f.Ok ? "ok" : "failed"));
        if (_span is not null)
        {
            _span.SetTag(TelemetryTags.Samples, f.Images);
            foreach (var m in f.Metrics)
                if (m.Value is double v) _span.SetTag($"litevae.eval.{m.Name}", v);
            if (!f.Ok) _span.Fail(f.Error ?? "evaluation failed");
            _span.EndHeld();
            _span = null;
        }
        _coordinator.Tell(f);
        if (_request is not null) Context.System.EventStream.Publish(new EvaluationDone(_request, f));
        _job?.Dispose();
        _job = null;
        _request = null;
    }
}
