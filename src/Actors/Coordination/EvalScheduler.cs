using System.Text.Json;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Training;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.ClientProtocol;
using static LiteVae.Actors.Protocol.EvalProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The Coordinator's evaluation jobs, as its child: `litevae eval --cluster` commands and one job per new
/// checkpoint, queued for the eval nodes (at most <see cref="CoordinatorSettings.MaxQueuedEvaluations"/> waiting;
/// a newer checkpoint's job supersedes an older one still waiting), each job's checkpoint pinned against
/// retention until the job ends. Jobs are kept in the run directory (eval/queue/, the last 100 ended ones too), so a
/// coordinator that replaces a lost one runs the unfinished ones and answers for all of them under the same ids.
/// </summary>
public sealed class EvalScheduler : ReceiveActor
{
    /// <summary>From the Coordinator: evaluate this new checkpoint (when the run evaluates every checkpoint).</summary>
    public sealed record EvaluateCheckpoint(CheckpointEvents.CheckpointSaved Saved, string? RunTrace) : INoSerializationVerificationNeeded;

    /// <summary>From the Coordinator: the run's latest marker span, which a user's evaluation links to.</summary>
    public sealed record RunMarked(string? RunTrace) : INoSerializationVerificationNeeded;

    /// <summary>To the Coordinator after every change: the latest jobs, for status.</summary>
    public sealed record JobsChanged(IReadOnlyList<EvaluationStatus> Latest) : INoSerializationVerificationNeeded;

    /// <summary>A job as kept in eval/queue/: what to run, and once it ended, how it ended (so a successor answers for it).</summary>
    private sealed record Kept(string JobId, string CheckpointPath, string? Data, string? TraceParent, bool ForCheckpoint,
        EvaluationStatus? Ended = null);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunPlan _plan;
    private readonly ICheckpointStore _store;
    private readonly CoordinatorSettings _settings;
    private readonly string _coordinatorId;
    private readonly string _queueDir;
    private readonly Dictionary<IActorRef, (string Node, string? Job)> _evaluators = new();
    private readonly Dictionary<string, (EvaluationStatus Status, RunEvaluation Request)> _jobs = new();
    private readonly Dictionary<string, IDisposable> _pins = new();   // checkpoints of queued and running jobs
    private readonly HashSet<string> _checkpointJobs = [];            // started by a checkpoint, not by a user
    private readonly Queue<string> _queue = new();
    private int _jobCounter;
    private string? _runTrace;   // the run's latest marker (TraceContext.WriteMarker in the Coordinator)

    public EvalScheduler(RunPlan plan, ICheckpointStore store, CoordinatorSettings settings, string coordinatorId)
    {
        (_plan, _store, _settings, _coordinatorId) = (plan, store, settings, coordinatorId);
        _queueDir = Path.Combine(RunDirectory.EvalOf(plan.RunDir), "queue");
        Receive<EvaluatorHeartbeat>(HandleHeartbeat);
        Receive<RequestEvaluation>(HandleRequest);
        Receive<GetEvaluation>(m => Sender.Tell(_jobs.TryGetValue(m.JobId, out var j)
            ? j.Status
            : new CommandRejected("eval", $"no evaluation job '{m.JobId}' (known: {string.Join(", ", _jobs.Keys.DefaultIfEmpty("none"))})")));
        Receive<EvaluationStarted>(m => Update(m.JobId, s => s with { State = EvaluationStatus.Running, Node = m.Node }));
        Receive<EvaluationFinished>(HandleFinished);
        Receive<EvaluateCheckpoint>(HandleCheckpoint);
        Receive<RunMarked>(m => _runTrace = m.RunTrace);
        Receive<Terminated>(t => EvaluatorLost(t.ActorRef));
    }

    public static Props Props(RunPlan plan, ICheckpointStore store, CoordinatorSettings settings, string coordinatorId) =>
        Akka.Actor.Props.Create(() => new EvalScheduler(plan, store, settings, coordinatorId));

    protected override void PreStart() => Reload();

    protected override void PostStop()
    {
        foreach (var pin in _pins.Values) pin.Dispose();
        _pins.Clear();
    }

    private void HandleHeartbeat(EvaluatorHeartbeat hb)
    {
        if (!_evaluators.ContainsKey(hb.Evaluator))
        {
            _log.Info("evaluator on {0} joined{1}", hb.Node, hb.RunningJob is null ? "" : $", running {hb.RunningJob}");
            Context.Watch(hb.Evaluator);
            // An eval node still running a job of the previous coordinator is busy; if that job was left to us, it runs there.
            _evaluators[hb.Evaluator] = (hb.Node, hb.RunningJob);
            if (hb.RunningJob is { } job && _queue.Contains(job))
            {
                var rest = _queue.Where(j => j != job).ToList();
                _queue.Clear();
                foreach (var j in rest) _queue.Enqueue(j);
                Update(job, s => s with { State = EvaluationStatus.Running, Node = hb.Node });
            }
        }
        Dispatch();
    }

    private void HandleCheckpoint(EvaluateCheckpoint m)
    {
        if (_evaluators.Count == 0) return;
        // Only the newest checkpoint waits for an eval node: with checkpoints coming faster than evaluations, an
        // older one still queued would otherwise keep its pinned step directory on disk for nothing.
        foreach (var old in _queue.Where(_checkpointJobs.Contains).ToList())
            HandleFinished(new EvaluationFinished(old, false, $"superseded by the checkpoint of step {m.Saved.Step}", [], null, 0, 0));
        // The evaluation of a checkpoint is a trace of its own, linked to the run's marker: this span ends at once
        // and parents the eval node's job, so the job never waits under a span that is still open.
        using var span = LiteVaeTelemetry.Default.Cluster.StartLinkedRoot("coordinator eval", System.Diagnostics.ActivityKind.Internal, [m.RunTrace],
            [new(TelemetryTags.RunId, Path.GetFileName(_plan.RunDir.TrimEnd('/'))), new(TelemetryTags.Checkpoint, m.Saved.Path),
             new(TelemetryTags.Step, m.Saved.Step), new(TelemetryTags.Reason, "checkpoint")]);
        string id = NewId();
        span?.SetTag(TelemetryTags.JobId, id);
        try { Enqueue(id, m.Saved.Path, null, TraceContext.Inject(span), forCheckpoint: true); }
        catch (Exception e) when (e is CheckpointNotFoundException or IOException)
        {
            _log.Warning("checkpoint of step {0} not evaluated: {1}", m.Saved.Step, e.Message);
            span.Fail(e.Message);
        }
    }

    private void HandleRequest(RequestEvaluation r)
    {
        using var span = LiteVaeTelemetry.Default.Cluster.StartFrom("coordinator eval", System.Diagnostics.ActivityKind.Consumer, r.TraceParent,
            [new(TelemetryTags.Command, "eval"), new(TelemetryTags.RunId, Path.GetFileName(_plan.RunDir.TrimEnd('/')))]);
        span?.SetTag("litevae.eval.checkpoint_spec", r.Checkpoint);
        if (span is not null && TraceContext.TryExtract(_runTrace, out var run)) span.AddLink(new System.Diagnostics.ActivityLink(run));
        void Reject(string why)
        {
            span.Fail(why);
            Sender.Tell(new CommandRejected("eval", why));
        }
        string path;
        string? data = r.Data;
        try
        {
            // Paths in a command are a file read on this cluster's machines: only inside the run directory
            // or an allow-listed data root (see PathPolicy). last / step-N are names, not paths.
            var paths = new Security.PathPolicy(_plan.RunDir, (_settings.DataRoots ?? []).Concat(_plan.SourceFolders ?? []));
            string spec = r.Checkpoint == "last" || r.Checkpoint.StartsWith("step-", StringComparison.Ordinal)
                ? r.Checkpoint
                : paths.Resolve(r.Checkpoint, "--checkpoint");
            if (data is not null) data = paths.CheckShardSpec(data, "--data");
            path = _store.Resolve(_plan.RunDir, spec);
        }
        catch (Exception e) when (e is CheckpointNotFoundException or Security.PathRefusedException)
        {
            Reject(e.Message);
            return;
        }
        if (_queue.Count >= CoordinatorSettings.MaxQueuedEvaluations)
        {
            Reject($"{_queue.Count} evaluations are already waiting for an eval node; try again when some have finished");
            return;
        }
        if (_evaluators.Count == 0)
        {
            Reject($"no node with role '{ClusterRoles.Eval}' is up in this cluster; start one with: litevae node --hocon hocon/eval-node.conf --set litevae.node.seed-nodes=[...]");
            return;
        }
        // The eval node's job span becomes a child of this one: client → coordinator → eval node, one trace.
        string id = NewId();
        try { Enqueue(id, path, data, TraceContext.Inject(span) ?? r.TraceParent, forCheckpoint: false); }
        catch (Exception e) when (e is CheckpointNotFoundException or IOException)
        {
            Reject(e.Message);
            return;
        }
        span?.SetTag(TelemetryTags.JobId, id);
        span?.SetTag(TelemetryTags.Checkpoint, path);
        Sender.Tell(new EvaluationAccepted(id, path));
    }

    private string NewId() => $"eval-{++_jobCounter:D4}-{_coordinatorId[..4]}";

    private void Enqueue(string id, string checkpoint, string? data, string? traceParent, bool forCheckpoint)
    {
        // Retention must not delete the checkpoint while the job waits for an eval node or reads it.
        var pin = _store.Pin(_plan.RunDir, checkpoint, id);
        if (pin is not null) _pins[id] = pin;
        var request = new RunEvaluation(id, checkpoint, data, _plan.ExperimentHocon, _plan.RunDir, traceParent, Coordinator.Home(_plan, _settings));
        _jobs[id] = (new EvaluationStatus(id, EvaluationStatus.Queued, checkpoint, null, [], null, null), request);
        if (forCheckpoint) _checkpointJobs.Add(id);
        _queue.Enqueue(id);
        Save(new Kept(id, checkpoint, data, traceParent, forCheckpoint));
        Dispatch();
    }

    private void Dispatch()
    {
        while (_queue.Count > 0)
        {
            var free = _evaluators.FirstOrDefault(kv => kv.Value.Job is null);
            if (free.Key is null) break;
            string id = _queue.Dequeue();
            _evaluators[free.Key] = (free.Value.Node, id);
            Update(id, s => s with { State = EvaluationStatus.Running, Node = free.Value.Node });
            free.Key.Tell(_jobs[id].Request);
        }
        Context.Parent.Tell(new JobsChanged(_jobs.Values.Select(j => j.Status).TakeLast(10).ToList()));
    }

    private void Update(string id, Func<EvaluationStatus, EvaluationStatus> f)
    {
        if (_jobs.TryGetValue(id, out var j)) _jobs[id] = (f(j.Status), j.Request);
    }

    private void HandleFinished(EvaluationFinished f)
    {
        foreach (var (ev, info) in _evaluators.ToList())
            if (info.Job == f.JobId) _evaluators[ev] = (info.Node, null);
        if (!_jobs.ContainsKey(f.JobId))
        {
            Dispatch();   // a job of an earlier coordinator that nobody left to us: its eval node is free now
            return;
        }
        Update(f.JobId, s => s with
        {
            State = f.Ok ? EvaluationStatus.Done : EvaluationStatus.Failed, Metrics = f.Metrics, Error = f.Error, ReportPath = f.ReportPath,
        });
        if (_pins.Remove(f.JobId, out var pin)) pin.Dispose();
        bool forCheckpoint = _checkpointJobs.Remove(f.JobId);
        if (_queue.Contains(f.JobId))
        {
            var rest = _queue.Where(j => j != f.JobId).ToList();
            _queue.Clear();
            foreach (var j in rest) _queue.Enqueue(j);
        }
        var (status, request) = _jobs[f.JobId];
        Save(new Kept(f.JobId, request.CheckpointPath, request.Data, request.TraceParent, forCheckpoint, status));
        _log.Info("evaluation {0} {1}{2}", f.JobId, f.Ok ? "done" : "failed", f.Ok ? "" : $": {f.Error}");
        Dispatch();
    }

    private void EvaluatorLost(IActorRef evaluator)
    {
        if (!_evaluators.Remove(evaluator, out var e)) return;
        if (e.Job is not null)
            HandleFinished(new EvaluationFinished(e.Job, false, $"eval node {e.Node} was lost", [], null, 0, 0));
        _log.Warning("evaluator on {0} is gone", e.Node);
    }

    // ------------------------------------------------ jobs kept in the run directory until they end

    private void Save(Kept k)
    {
        try
        {
            Directory.CreateDirectory(_queueDir);
            string path = Path.Combine(_queueDir, k.JobId + ".json");
            File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(k));
            File.Move(path + ".tmp", path, overwrite: true);
            if (k.Ended is not null)
                foreach (var old in Directory.GetFiles(_queueDir, "*.json").Select(f => new FileInfo(f)).OrderByDescending(f => f.LastWriteTimeUtc).Skip(100))
                    old.Delete();
        }
        catch (IOException e) { _log.Warning("evaluation {0} is not kept for a successor coordinator: {1}", k.JobId, e.Message); }
    }

    /// <summary>The jobs an earlier coordinator kept: ended ones are answered for, the rest queued again (their runs on
    /// eval nodes, if any, report here when they end).</summary>
    private void Reload()
    {
        if (!Directory.Exists(_queueDir)) return;
        foreach (var file in Directory.EnumerateFiles(_queueDir, "*.json").OrderBy(File.GetLastWriteTimeUtc))
        {
            Kept? k = null;
            try { k = JsonSerializer.Deserialize<Kept>(File.ReadAllText(file)); }
            catch (Exception e) when (e is JsonException or IOException) { }
            if (k is null) { File.Delete(file); continue; }
            var request = new RunEvaluation(k.JobId, k.CheckpointPath, k.Data, _plan.ExperimentHocon, _plan.RunDir, k.TraceParent,
                Coordinator.Home(_plan, _settings));
            if (k.Ended is { } ended)
            {
                _jobs[k.JobId] = (ended, request);
                continue;
            }
            try
            {
                Enqueue(k.JobId, k.CheckpointPath, k.Data, k.TraceParent, k.ForCheckpoint);
                _log.Info("evaluation {0} of {1}, left by the previous coordinator, is queued again", k.JobId, k.CheckpointPath);
            }
            catch (Exception e) when (e is CheckpointNotFoundException or IOException)
            {
                _log.Warning("evaluation {0} left by the previous coordinator cannot run: {1}", k.JobId, e.Message);
                File.Delete(file);
            }
        }
    }
}
