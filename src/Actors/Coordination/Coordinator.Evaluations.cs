using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Training;
using static LiteVae.Actors.Protocol.ClientProtocol;
using static LiteVae.Actors.Protocol.EvalProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The Coordinator's evaluation jobs: `litevae eval --cluster` commands and one job per new checkpoint, queued
/// for the eval nodes (at most <see cref="CoordinatorSettings.MaxQueuedEvaluations"/> waiting), each job's
/// checkpoint pinned against retention until it ends.
/// </summary>
public sealed partial class Coordinator
{
    private readonly Dictionary<IActorRef, (string Node, string? Job)> _evaluators = new();
    private readonly Dictionary<string, (EvaluationStatus Status, RunEvaluation Request)> _jobs = new();
    // Checkpoints of queued and running evaluations, kept from retention until the job ends.
    private readonly Dictionary<string, IDisposable> _pins = new();
    // Jobs started by a checkpoint (eval each checkpoint), as opposed to a user's command.
    private readonly HashSet<string> _checkpointJobs = [];
    private readonly Queue<string> _queuedJobs = new();
    private int _jobCounter;

    private void EvaluateCheckpoint(CheckpointEvents.CheckpointSaved s)
    {
        SupersedeQueuedCheckpointJobs(s.Step);
        try { _checkpointJobs.Add(StartJob(s.Path, null, RunTrace)); }
        catch (Exception e) when (e is CheckpointNotFoundException or IOException)
        {
            _log.Warning("checkpoint of step {0} not evaluated: {1}", s.Step, e.Message);
        }
    }

    /// <summary>
    /// Only the newest checkpoint waits for an eval node: with checkpoints coming faster than evaluations, an
    /// older one still queued would otherwise keep its pinned step directory on disk for nothing.
    /// </summary>
    private void SupersedeQueuedCheckpointJobs(long step)
    {
        var superseded = _queuedJobs.Where(_checkpointJobs.Contains).ToList();
        if (superseded.Count == 0) return;
        var keep = _queuedJobs.Where(j => !_checkpointJobs.Contains(j)).ToList();
        _queuedJobs.Clear();
        foreach (var j in keep) _queuedJobs.Enqueue(j);
        foreach (var j in superseded)
            HandleEvaluationFinished(new EvaluationFinished(j, false, $"superseded by the checkpoint of step {step}", [], null, 0, 0));
    }

    private void HandleEvaluatorHeartbeat(EvaluatorHeartbeat hb)
    {
        if (!_evaluators.ContainsKey(hb.Evaluator))
        {
            _log.Info("evaluator on {0} joined", hb.Node);
            Context.Watch(hb.Evaluator);
            _evaluators[hb.Evaluator] = (hb.Node, null);
        }
        DispatchJobs();
    }

    private void HandleRequestEvaluation(RequestEvaluation r)
    {
        using var span = CommandSpan("eval", r.TraceParent);
        span?.SetTag("litevae.eval.checkpoint_spec", r.Checkpoint);
        string path;
        string? data = r.Data;
        try
        {
            // Paths in a command are a file read on this cluster's machines: only inside the run directory
            // or an allow-listed data root (see PathPolicy). last / step-N are names, not paths.
            var paths = new Security.PathPolicy(_plan.RunDir, _settings.DataRoots ?? []);
            string spec = r.Checkpoint == "last" || r.Checkpoint.StartsWith("step-", StringComparison.Ordinal)
                ? r.Checkpoint
                : paths.Resolve(r.Checkpoint, "--checkpoint");
            if (data is not null) data = paths.CheckShardSpec(data, "--data");
            path = _store.Resolve(_plan.RunDir, spec);
        }
        catch (Exception e) when (e is CheckpointNotFoundException or Security.PathRefusedException)
        {
            span.Fail(e.Message);
            Sender.Tell(new CommandRejected("eval", e.Message));
            return;
        }
        if (_queuedJobs.Count >= CoordinatorSettings.MaxQueuedEvaluations)
        {
            Sender.Tell(new CommandRejected("eval", $"{_queuedJobs.Count} evaluations are already waiting for an eval node; try again when some have finished"));
            return;
        }
        if (_evaluators.Count == 0)
        {
            string why = $"no node with role '{ClusterRoles.Eval}' is up in this cluster; start one with: litevae node --hocon hocon/eval-node.conf --set litevae.node.seed-nodes=[...]";
            span.Fail(why);
            Sender.Tell(new CommandRejected("eval", why));
            return;
        }
        // The eval node's job span becomes a child of this one: client → coordinator → eval node, one trace.
        string id;
        try { id = StartJob(path, data, TraceContext.Inject(span) ?? r.TraceParent); }
        catch (Exception e) when (e is CheckpointNotFoundException or IOException)
        {
            span.Fail(e.Message);
            Sender.Tell(new CommandRejected("eval", e.Message));
            return;
        }
        span?.SetTag(TelemetryTags.JobId, id);
        span?.SetTag(TelemetryTags.Checkpoint, path);
        Sender.Tell(new EvaluationAccepted(id, path));
    }

    private string StartJob(string checkpoint, string? data, string? traceParent)
    {
        string id = $"eval-{++_jobCounter:D4}-{_id[..4]}";
        // Retention must not delete the checkpoint while the job waits for an eval node or reads it.
        var pin = _store.Pin(_plan.RunDir, checkpoint, id);
        if (pin is not null) _pins[id] = pin;
        var req = new RunEvaluation(id, checkpoint, data, _plan.ExperimentHocon, _plan.RunDir, traceParent);
        _jobs[id] = (new EvaluationStatus(id, EvaluationStatus.Queued, checkpoint, null, [], null, null), req);
        _queuedJobs.Enqueue(id);
        DispatchJobs();
        return id;
    }

    private void DispatchJobs()
    {
        while (_queuedJobs.Count > 0)
        {
            var free = _evaluators.FirstOrDefault(kv => kv.Value.Job is null);
            if (free.Key is null) return;
            string id = _queuedJobs.Dequeue();
            _evaluators[free.Key] = (free.Value.Node, id);
            UpdateJob(id, s => s with { State = EvaluationStatus.Running, Node = free.Value.Node });
            free.Key.Tell(_jobs[id].Request);
        }
    }

    private void UpdateJob(string id, Func<EvaluationStatus, EvaluationStatus> f)
    {
        if (_jobs.TryGetValue(id, out var j)) _jobs[id] = (f(j.Status), j.Request);
    }

    private void HandleEvaluationFinished(EvaluationFinished f)
    {
        UpdateJob(f.JobId, s => s with
        {
            State = f.Ok ? EvaluationStatus.Done : EvaluationStatus.Failed, Metrics = f.Metrics, Error = f.Error,
            ReportPath = f.ReportPath,
        });
        if (_pins.Remove(f.JobId, out var pin)) pin.Dispose();
        _checkpointJobs.Remove(f.JobId);
        foreach (var (ev, info) in _evaluators.ToList())
            if (info.Job == f.JobId) _evaluators[ev] = (info.Node, null);
        _log.Info("evaluation {0} {1}{2}", f.JobId, f.Ok ? "done" : "failed", f.Ok ? "" : $": {f.Error}");
        DispatchJobs();
    }

    private void EvaluatorLost(IActorRef evaluator)
    {
        if (!_evaluators.Remove(evaluator, out var e)) return;
        if (e.Job is not null)
            HandleEvaluationFinished(new EvaluationFinished(e.Job, false, $"eval node {e.Node} was lost", [], null, 0, 0));
        _log.Warning("evaluator on {0} is gone", e.Node);
    }
}
