using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Training;
using LiteVae.Actors.Transfer;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.ClientProtocol;
using static LiteVae.Actors.Protocol.DataProtocol;
using static LiteVae.Actors.Protocol.EvalProtocol;
using static LiteVae.Actors.Protocol.GroupProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The cluster singleton that owns the run: run state, the step budget, which data node makes which batch
/// (<see cref="BatchLedger"/>), the checkpoint registry, evaluation jobs, and the answers to user commands.
/// It holds no tensors and does no heavy work, so it can live on any node with the coordinator role; a new
/// incarnation (its node was lost) rebuilds its state from the run directory and the trainer's report.
/// Its state lives in pure pieces: <see cref="BatchLedger"/> (batch leases), <see cref="Distributed.TrainerGroupState"/>
/// (the data-parallel group); evaluation jobs are its child <see cref="EvalScheduler"/>.
/// </summary>
public sealed class Coordinator : ReceiveActor, IWithTimers
{
    public const string RunWaiting = "waiting-for-trainer", RunStarting = "starting", RunTraining = "training",
        RunPaused = "paused", RunStopping = "stopping", RunFinishedState = "finished";

    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed class LeaveCluster : INoSerializationVerificationNeeded { public static readonly LeaveCluster Instance = new(); }

    private sealed record TrainerInfo(IActorRef Trainer, IActorRef Intake, string Node, string Device, int IntakeBatches) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunPlan _plan;
    private readonly ICheckpointStore _store;
    private readonly CoordinatorSettings _settings;
    private readonly string _id = Guid.NewGuid().ToString("N")[..12];
    private readonly SortedDictionary<long, string> _checkpoints = new();
    private readonly List<(IActorRef Client, long AfterStep)> _checkpointWaiters = [];
    private readonly List<IActorRef> _stopWaiters = [];

    private IActorRef _evals = ActorRefs.Nobody;   // the EvalScheduler child
    private IReadOnlyList<EvaluationStatus> _latestJobs = [];
    private TrainerInfo? _trainer;
    private string _state = RunWaiting;
    private long _step;
    private TrainerProgress? _progress;
    private bool _stopRequested;
    private string? _failure;   // why the run cannot go on (it stops with this reason)
    // The run's marker span (train run start / resume), written complete when a trainer or group generation
    // starts: a run is never one open span (Jaeger would show a missing root until it ended). The trainer's start
    // is its child; step windows, checkpoints, evaluations and batch streams are traces of their own that link to it.
    private string? _runTrace;
    private string? RunTrace => _runTrace;
    private string RunId => Path.GetFileName(_plan.RunDir.TrimEnd('/'));

    public ITimerScheduler Timers { get; set; } = null!;

    public Coordinator(RunPlan plan, ICheckpointStore store, CoordinatorSettings settings)
    {
        (_plan, _store, _settings) = (plan, store, settings);
        _ledger = new BatchLedger(plan.BatchSize);
        _group = new TrainerGroupState(settings.Group);

        Receive<Tick>(_ => HandleTick());
        // trainer
        Receive<RegisterTrainer>(HandleRegisterTrainer);
        Receive<TrainerReady>(HandleTrainerReady);
        Receive<BatchTrained>(HandleBatchTrained);
        Receive<TrainerProgress>(p =>
        {
            if (p.CoordinatorId != _id) return;
            (_progress, _step) = (p, p.Step);
            Context.System.EventStream.Publish(p);   // local progress display (litevae train)
        });
        Receive<TrainingFinished>(f => HandleFinished(f, force: false));
        Receive<GroupAddressesCreated>(HandleGroupAddresses);
        Receive<TrainerGroupJoined>(HandleGroupJoined);
        Receive<CheckpointEvents.CheckpointSaved>(HandleCheckpointSaved);
        Receive<Fetched>(HandleAdopted);
        Receive<FetchFailed>(HandleAdoptFailed);
        Receive<FinishAnyway>(_ => { if (_deferredFinish is { } f) { _deferredFinish = null; HandleFinished(f, force: true); } });
        Receive<CheckpointEvents.CheckpointFailed>(f =>
        {
            _log.Error("checkpoint of step {0} failed: {1}", f.Step, f.Reason);
            foreach (var (c, _) in _checkpointWaiters) c.Tell(new CommandRejected("checkpoint", $"writing the checkpoint failed: {f.Reason}"));
            _checkpointWaiters.Clear();
        });
        // data
        Receive<DataNodeHeartbeat>(HandleDataHeartbeat);
        Receive<RequestLease>(HandleRequestLease);
        Receive<DataStreamBroken>(HandleStreamBroken);
        // eval: the child's
        Receive<EvaluatorHeartbeat>(m => _evals.Forward(m));
        Receive<EvaluationStarted>(m => _evals.Forward(m));
        Receive<EvaluationFinished>(m => _evals.Forward(m));
        Receive<EvalScheduler.JobsChanged>(m => _latestJobs = m.Latest);
        // clients
        Receive<GetClusterStatus>(m =>
        {
            using var span = CommandSpan("status", m.TraceParent);
            span?.SetTag(TelemetryTags.Step, _step);
            Sender.Tell(BuildStatus());
        });
        Receive<RequestEvaluation>(m => _evals.Forward(m));
        Receive<GetEvaluation>(m => _evals.Forward(m));
        Receive<RequestCheckpoint>(HandleRequestCheckpoint);
        Receive<RequestStop>(HandleRequestStop);
        Receive<PauseTraining>(m => { _trainer?.Trainer.Tell(m); if (_state == RunTraining) _state = RunPaused; });
        Receive<ResumeTraining>(m => { _trainer?.Trainer.Tell(m); if (_state == RunPaused) _state = RunTraining; });
        Receive<LeaveCluster>(_ => HandleLeaveCluster());
        Receive<Terminated>(HandleTerminated);
    }

    public static Props Props(RunPlan plan, ICheckpointStore store, CoordinatorSettings settings) =>
        Akka.Actor.Props.Create(() => new Coordinator(plan, store, settings));

    protected override void PreStart()
    {
        _store.ClearPins(_plan.RunDir);
        foreach (var c in _store.List(_plan.RunDir))
            _checkpoints[c.Step] = c.Path;
        _step = _checkpoints.Count > 0 ? _checkpoints.Keys.Max() : 0;
        _evals = Context.ActorOf(EvalScheduler.Props(_plan, _store, _settings, _id), "evaluations");
        _log.Info("coordinator {0} for {1}: {2} shards, {3} samples an epoch, {4} steps, {5} checkpoint(s) on disk",
            _id, _plan.RunDir, _plan.Shards, _plan.SamplesPerEpoch, _plan.MaxSteps, _checkpoints.Count);
        Timers.StartPeriodicTimer("tick", Tick.Instance, _settings.Tick, _settings.Tick);
    }

    /// <summary>A span for a client command, child of the CLI's span when the command carries its traceparent, linked
    /// to the run's marker. It ends when the command is handled here (passed on, answered or refused).</summary>
    private System.Diagnostics.Activity? CommandSpan(string command, string? traceParent)
    {
        var span = LiteVaeTelemetry.Default.Cluster.StartFrom($"coordinator {command}", System.Diagnostics.ActivityKind.Consumer, traceParent,
            [new(TelemetryTags.Command, command), new(TelemetryTags.RunId, RunId)]);
        if (span is not null && TraceContext.TryExtract(RunTrace, out var run)) span.AddLink(new System.Diagnostics.ActivityLink(run));
        return span;
    }

    /// <summary>
    /// Writes the run's marker span for a (re)start of training: <c>train run start</c> for a fresh run,
    /// <c>train run resume</c> when a trainer or group generation continues from a checkpoint. It links to the
    /// previous marker, so a run's restarts are a chain in the backend; StartTraining carries the new one.
    /// </summary>
    private void MarkRunStart(string? resume, string trainers)
    {
        _runTrace = LiteVaeTelemetry.Default.Train.WriteMarker(resume is null ? "train run start" : "train run resume", [_runTrace],
        [
            new(TelemetryTags.RunId, RunId), new("litevae.run.dir", _plan.RunDir), new("litevae.run.max_steps", _plan.MaxSteps),
            new("litevae.run.shards", _plan.Shards), new(TelemetryTags.StepFirst, _step), new("litevae.coordinator.id", _id),
            new(TelemetryTags.Checkpoint, resume), new(TelemetryTags.Node, trainers),
        ]) ?? _runTrace;
        _evals.Tell(new EvalScheduler.RunMarked(_runTrace));   // a user's evaluation links to it too
    }

    private string? LastCheckpoint => _checkpoints.Count > 0 ? _checkpoints[_checkpoints.Keys.Max()] : null;

    private StartTraining StartMessage(string? resume, string? trace) =>
        new(_id, _plan.ExperimentHocon, _plan.RunDir, resume, _plan.MaxSteps, _plan.CheckpointEvery, _plan.LogEvery,
            _plan.OrderFingerprint, _plan.SamplesPerEpoch, trace, Home(_plan, _settings));

    /// <summary>Where the run lives, for nodes that may not share its disk (null: every node shares it, no transfers).</summary>
    public static TransferProtocol.RunHome? Home(RunPlan plan, CoordinatorSettings settings) =>
        settings.CheckpointServer is { } server && plan.RunId is { } id && settings.Storage.Shared != SharedRunDir.Yes
            ? new TransferProtocol.RunHome(plan.RunDir, id, server)
            : null;

    // ---------------------------------------------------------------- trainer

    private void HandleRegisterTrainer(RegisterTrainer r)
    {
        if (_state == RunFinishedState)
        {
            return;   // nothing to train; a late trainer stays idle
        }
        if (GroupMode)
        {
            RegisterGroupMember(r);
            return;
        }
        if (_trainer is not null && !_trainer.Trainer.Equals(r.Trainer))
        {
            _log.Warning("trainer {0} replaces {1}", r.Trainer.Path, _trainer.Trainer.Path);
            Context.Unwatch(_trainer.Trainer);
            TrainerGone();
        }
        string? resume = LastCheckpoint;
        if (_trainer is null)
        {
            _trainer = new TrainerInfo(r.Trainer, r.Intake, r.Node, r.Device, r.IntakeBatches);
            Context.Watch(r.Trainer);
            _state = RunStarting;
            MarkRunStart(resume, r.Node);   // once per trainer, not per repeated registration
        }
        _log.Info("starting trainer on {0} ({1})", r.Node, resume is null ? "fresh run" : $"resume from {resume}");
        r.Trainer.Tell(StartMessage(resume, RunTrace));
    }

    private void HandleTrainerReady(TrainerReady r)
    {
        if (GroupMode)
        {
            GroupMemberReady(r);
            return;
        }
        if (r.CoordinatorId != _id || _trainer is null || !Sender.Equals(_trainer.Trainer)) return;
        StartStepping(r);
    }

    /// <summary>The trainer (rank 0 of a group) is restored: open the data plan from where it stands and let it step.</summary>
    private void StartStepping(TrainerReady r)
    {
        _step = r.Step;
        _state = _stopRequested ? RunStopping : RunTraining;
        OpenPlan(r.NextSample, _trainer!.IntakeBatches);
        _log.Info("trainer ready at step {0}, sample {1} of the order (epoch {2}); plan {3}", r.Step, r.NextSample,
            _plan.SamplesPerEpoch > 0 ? r.NextSample / _plan.SamplesPerEpoch : 0, _planVersion);
        _trainer.Trainer.Tell(new BeginSteps(_id, _planVersion));
        if (_group.Active is { } g)
            foreach (var m in g.Ranks.Skip(1))
                _members[m.Id].Trainer.Tell(new BeginSteps(_id, _planVersion));   // followers step with the leader
        if (_stopRequested) _trainer.Trainer.Tell(new StopTraining("stop requested", null));
    }

    private void HandleFinished(TrainingFinished f, bool force)
    {
        if (f.CoordinatorId != _id) return;
        bool copying = _adopting is not null || _toAdopt.Count > 0 ||
                       (RunDirectory.StepOf(f.CheckpointPath ?? "") == f.Step && !_checkpoints.ContainsKey(f.Step));
        if (!force && RunHome is not null && !Sender.Path.Address.HasLocalScope && copying)
        {
            // The final checkpoint is still on its way to the run directory: the run is not over (nor may the nodes leave)
            // until it is stored here, or a lost trainer node would take it along.
            _log.Info("run finished at step {0} on the trainer; waiting for its checkpoint to be stored in {1}", f.Step, _plan.RunDir);
            _deferredFinish = f;
            Timers.StartSingleTimer("finish-anyway", FinishAnyway.Instance, TimeSpan.FromMinutes(10));
            return;
        }
        if (_checkpoints.TryGetValue(f.Step, out var stored)) f = f with { CheckpointPath = stored };
        _step = f.Step;
        _state = RunFinishedState;
        _failure ??= f.Failure;
        ClosePlan();
        var acc = Accounting();
        _log.Info($"run finished at step {f.Step}; checkpoint {f.CheckpointPath ?? "none"}; samples: {acc.SamplesTrained} trained, " +
                  $"{acc.SamplesSkipped} skipped as bad, {acc.DroppedBatches} batch(es) dropped as repeats, {acc.LeasesReissued} lease(s) re-issued");
        foreach (var w in _stopWaiters) w.Tell(new RunStopped(f.Step, f.CheckpointPath));
        _stopWaiters.Clear();
        string reason = _failure ?? (_stopRequested ? "stopped" : "step budget reached");
        Context.System.EventStream.Publish(new RunFinished(f.Step, f.CheckpointPath, reason, _failure is not null));
        // The run's end: a marker of its own (linked to the last start/resume), with the run's accounting.
        string? failure = _failure;
        LiteVaeTelemetry.Default.Train.WriteMarker("train run end", [_runTrace],
        [
            new(TelemetryTags.RunId, RunId), new("litevae.run.dir", _plan.RunDir), new(TelemetryTags.StepLast, f.Step),
            new(TelemetryTags.Samples, acc.SamplesTrained), new("litevae.samples.dropped_batches", acc.DroppedBatches),
            new(TelemetryTags.BadSamples, acc.SamplesSkipped), new(TelemetryTags.Reason, reason),
            new(TelemetryTags.Checkpoint, f.CheckpointPath), new("litevae.coordinator.id", _id),
        ], span => { if (failure is not null) span.Fail(failure); });
        if (_stopRequested && _settings.LeaveClusterWhenStopped)
            Timers.StartSingleTimer("leave", LeaveCluster.Instance, TimeSpan.FromSeconds(1));
    }

    // ---------------------------------------------------------------- checkpoints reach the run directory

    private sealed class FinishAnyway : INoSerializationVerificationNeeded { public static readonly FinishAnyway Instance = new(); }

    private TransferProtocol.RunHome? RunHome => Home(_plan, _settings);
    private readonly Queue<(CheckpointEvents.CheckpointSaved Saved, IActorRef Writer)> _toAdopt = new();
    private (CheckpointEvents.CheckpointSaved Saved, IActorRef Writer)? _adopting;
    private TrainingFinished? _deferredFinish;

    /// <summary>A checkpoint a trainer wrote on another node counts for the run only once it is complete in the run
    /// directory here (copied, checked, renamed: <see cref="CheckpointFetch"/>), so losing that node never loses a
    /// checkpoint the run has acknowledged. One copy at a time, in order.</summary>
    private void HandleCheckpointSaved(CheckpointEvents.CheckpointSaved s)
    {
        if (RunHome is not null && s.Holder is { } holder && !holder.Path.Address.HasLocalScope && !string.IsNullOrEmpty(s.Path))
        {
            _toAdopt.Enqueue((s, Sender));
            AdoptNext();
            return;
        }
        // A trainer on another node repeats a checkpoint's step it already reported (its own path): keep the run's copy.
        if (RunHome is not null && _checkpoints.ContainsKey(s.Step) && !Sender.Path.Address.HasLocalScope) s = s with { Path = "" };
        Count(s);
        if (s.Holder is not null) Sender.Tell(new CheckpointEvents.CheckpointStored(s.Step, _checkpoints.GetValueOrDefault(s.Step, s.Path)));
    }

    private void AdoptNext()
    {
        if (_adopting is not null || !_toAdopt.TryDequeue(out var next)) return;
        // Copies slower than the checkpoints come: an interval checkpoint with a newer one waiting behind it is skipped
        // (the trainer's retention may delete it meanwhile); a requested, final or shutdown one is always copied.
        while (next.Saved.Reason is "interval" or "start" && _toAdopt.Count > 0)
        {
            _log.Warning("checkpoint step {0} is not copied to the run directory: step {1} is already waiting", next.Saved.Step, _toAdopt.Peek().Saved.Step);
            next = _toAdopt.Dequeue();
        }
        _adopting = next;
        var s = next.Saved;
        Context.ActorOf(CheckpointFetch.Props(new FetchRequest(s.Path, [s.Holder!], RunDirectory.CheckpointsOf(_plan.RunDir),
            _settings.Storage.MayUseInPlace, _plan.Retention ?? new RetentionPolicy(), _settings.Storage, s)));
    }

    private void HandleAdopted(Fetched f)
    {
        var s = (CheckpointEvents.CheckpointSaved)f.Request.Tag!;
        var writer = _adopting?.Writer;
        _adopting = null;
        writer?.Tell(new CheckpointEvents.CheckpointStored(s.Step, f.Path));
        _log.Info("checkpoint step {0} stored in the run directory: {1} ({2})", s.Step, f.Path,
            f.Bytes > 0 ? $"{f.Bytes / 1048576.0:F1} MiB copied from {s.Holder!.Path.Address} in {f.Seconds:F1} s" : "already there: shared disk");
        Count(s with { Path = f.Path });
        AdoptDone();
    }

    private void HandleAdoptFailed(FetchFailed f)
    {
        var s = (CheckpointEvents.CheckpointSaved)f.Request.Tag!;
        var writer = _adopting?.Writer;
        _adopting = null;
        writer?.Tell(new CheckpointEvents.CheckpointStored(s.Step, null, f.Reason));
        _log.Error("checkpoint step {0} ({1}) is not stored in the run directory {2}: {3}; the run's last checkpoint stays {4}",
            s.Step, s.Path, _plan.RunDir, f.Reason, LastCheckpoint ?? "none");
        for (int i = _checkpointWaiters.Count - 1; i >= 0; i--)
        {
            if (s.Step < _checkpointWaiters[i].AfterStep) continue;
            _checkpointWaiters[i].Client.Tell(new CommandRejected("checkpoint", $"the checkpoint of step {s.Step} could not be stored in {_plan.RunDir}: {f.Reason}"));
            _checkpointWaiters.RemoveAt(i);
        }
        AdoptDone();
    }

    private void AdoptDone()
    {
        AdoptNext();
        if (_adopting is null && _deferredFinish is { } f)
        {
            _deferredFinish = null;
            Timers.Cancel("finish-anyway");
            HandleFinished(f, force: true);
        }
    }

    private void Count(CheckpointEvents.CheckpointSaved s)
    {
        if (!string.IsNullOrEmpty(s.Path)) _checkpoints[s.Step] = s.Path;
        for (int i = _checkpointWaiters.Count - 1; i >= 0; i--)
        {
            if (s.Step < _checkpointWaiters[i].AfterStep) continue;
            _checkpointWaiters[i].Client.Tell(s with { Path = _checkpoints.GetValueOrDefault(s.Step, s.Path) });
            _checkpointWaiters.RemoveAt(i);
        }
        if (_plan.EvalEachCheckpoint && !string.IsNullOrEmpty(s.Path) && s.Reason is "start" or "interval" or "final")
            _evals.Tell(new EvalScheduler.EvaluateCheckpoint(s, RunTrace));
    }

    private void TrainerGone()
    {
        _trainer = null;
        if (_state != RunFinishedState) _state = RunWaiting;
        // Everything in flight was meant for that trainer's weights: void it; the next trainer's checkpoint
        // says where the data goes on.
        ClosePlan();
    }

    // ---------------------------------------------------------------- data nodes and batch leases

    private sealed record DataNodeInfo(string Node, DataNodeHeartbeat Last) : INoSerializationVerificationNeeded;

    private readonly BatchLedger _ledger;
    private readonly Dictionary<IActorRef, DataNodeInfo> _dataNodes = new();
    private readonly HashSet<IActorRef> _parked = [];   // data nodes that asked for a lease the trainer did not need yet
    private long _planVersion;
    private bool _planActive;

    private static string Key(IActorRef worker) => worker.Path.ToSerializationFormat();

    /// <summary>A new plan from sample <paramref name="next"/>: every earlier lease is void.</summary>
    private void OpenPlan(long next, int intakeBatches)
    {
        _ledger.Start(next, intakeBatches, DateTime.UtcNow);
        _parked.Clear();
        _planVersion++;
        _planActive = true;
        BroadcastPlan();
    }

    private void ClosePlan()
    {
        _planActive = false;
        _parked.Clear();
        _planVersion++;
        BroadcastPlan();
    }

    private DataPlan CurrentPlan() =>
        new(_id, _planVersion, _plan.ExperimentHocon, _planActive ? _trainer?.Intake : null, _plan.OrderFingerprint, RunTrace);

    private void BroadcastPlan()
    {
        var plan = CurrentPlan();
        foreach (var w in _dataNodes.Keys) w.Tell(plan);
    }

    private void HandleDataHeartbeat(DataNodeHeartbeat hb)
    {
        if (!_dataNodes.ContainsKey(hb.Worker))
        {
            _log.Info("data node {0} joined ({1} leases)", hb.Node, hb.MaxLeases);
            Context.Watch(hb.Worker);
        }
        if (hb.Error is not null && _dataNodes.GetValueOrDefault(hb.Worker)?.Last.Error != hb.Error)
            _log.Error("data node {0} cannot work on the run: {1}", hb.Node, hb.Error);
        _dataNodes[hb.Worker] = new DataNodeInfo(hb.Node, hb);
        if (hb.CoordinatorId != _id || hb.PlanVersion != _planVersion)
            hb.Worker.Tell(CurrentPlan());
    }

    private void HandleRequestLease(RequestLease r)
    {
        if (r.CoordinatorId != _id || r.PlanVersion != _planVersion)
        {
            r.Worker.Tell(CurrentPlan());
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, "plan changed"));
            return;
        }
        if (!_planActive || _state is not (RunTraining or RunPaused or RunStopping))
        {
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, $"run is {_state}"));
            return;
        }
        if (!TryGrant(r.Worker))
        {
            // The trainer has enough ahead of it; this node gets the next batch it needs (GrantParked).
            _parked.Add(r.Worker);
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, "the trainer has enough batches ahead"));
        }
    }

    private bool TryGrant(IActorRef worker)
    {
        if (_ledger.Next(Key(worker), DateTime.UtcNow) is not { } lease) return false;
        worker.Tell(new BatchLeased(_id, _planVersion, lease.Id, lease.Start, lease.Size, RunTrace));
        return true;
    }

    /// <summary>The trainer moved on or a batch must be made again: waiting data nodes get leases.</summary>
    private void GrantParked()
    {
        foreach (var w in _parked.ToList())
        {
            if (!_dataNodes.ContainsKey(w)) { _parked.Remove(w); continue; }
            if (!TryGrant(w)) return;
            _parked.Remove(w);
        }
    }

    private void HandleBatchTrained(BatchTrained m)
    {
        if (m.CoordinatorId != _id) return;
        _step = Math.Max(_step, m.Step);
        _ledger.Trained(m.NextSample, DateTime.UtcNow);
        GrantParked();
    }

    private void HandleStreamBroken(DataStreamBroken b)
    {
        if (b.CoordinatorId != "" && b.CoordinatorId != _id) return;
        DataNodeLost(b.Worker, b.Worker.Path.Address.ToString(), b.Reason);
    }

    /// <summary>Its batches not yet trained go to other data nodes; the trainer never trains a span twice, so a
    /// batch of the lost node still in flight is dropped if it arrives after the new one.</summary>
    private void DataNodeLost(IActorRef worker, string node, string why)
    {
        _parked.Remove(worker);
        int n = _ledger.WorkerLost(Key(worker));
        _log.Warning("data node {0}: {1}; leasing its {2} outstanding batch(es) again", node, why, n);
        GrantParked();
    }

    // ---------------------------------------------------------------- data-parallel group

    private readonly TrainerGroupState _group;
    private readonly Dictionary<string, TrainerInfo> _members = new();
    private readonly HashSet<string> _groupReady = [], _groupJoined = [];
    private TrainerReady? _leaderReady;
    private bool GroupMode => _settings.Group.Trainers > 1;

    private void RegisterGroupMember(RegisterTrainer r)
    {
        string id = Key(r.Trainer);
        if (!_members.ContainsKey(id))
        {
            _members[id] = new TrainerInfo(r.Trainer, r.Intake, r.Node, r.Device, r.IntakeBatches);
            Context.Watch(r.Trainer);
        }
        if (_group.Register(new GroupMember(id, r.Node, r.Device), DateTime.UtcNow))
            _log.Info("trainer {0} on {1} ({2}) waits for the group ({3} waiting, {4} wanted)", r.Trainer.Path, r.Node, r.Device,
                _group.Waiting.Count, _settings.Group.Trainers);
        TryFormGroup();
    }

    /// <summary>Forms the next generation when enough trainers wait; every rank restores the last checkpoint.</summary>
    private void TryFormGroup()
    {
        if (!GroupMode || _state == RunFinishedState || _group.TryForm(DateTime.UtcNow) is not { } g) return;
        _groupReady.Clear();
        _groupJoined.Clear();
        _leaderReady = null;
        _trainer = _members[g.Ranks[0].Id];
        _state = RunStarting;
        string? resume = LastCheckpoint;
        _log.Info("data-parallel group generation {0}: {1} ({2})", g.Generation,
            string.Join(", ", g.Ranks.Select((m, i) => $"rank {i} {m.Node} {m.Device}")), resume is null ? "fresh run" : $"resume from {resume}");
        MarkRunStart(resume, string.Join(",", g.Ranks.Select(m => m.Node)));
        foreach (var m in g.Ranks)
            _members[m.Id].Trainer.Tell(StartMessage(resume, RunTrace));
    }

    private void GroupMemberReady(TrainerReady r)
    {
        if (r.CoordinatorId != _id || _group.Active is not { } g) return;
        string id = Key(Sender);
        int rank = g.RankOf(id);
        if (rank < 0) return;
        if (rank == 0) _leaderReady = r;
        if (_groupReady.Add(id) && _groupReady.Count == g.WorldSize)
            _members[g.Ranks[0].Id].Trainer.Tell(new CreateGroupAddresses(_id, g.Generation, g.WorldSize));
    }

    private void HandleGroupAddresses(GroupAddressesCreated m)
    {
        if (m.CoordinatorId != _id || _group.Active is not { } g || g.Generation != m.Generation) return;
        for (int rank = 0; rank < g.WorldSize; rank++)
            _members[g.Ranks[rank].Id].Trainer.Tell(new JoinTrainerGroup(_id, g.Generation, rank, g.WorldSize, m.Addresses));
    }

    private void HandleGroupJoined(TrainerGroupJoined m)
    {
        if (m.CoordinatorId != _id || _group.Active is not { } g || g.Generation != m.Generation) return;
        if (_groupJoined.Add(Key(Sender)) && _groupJoined.Count == g.WorldSize && _leaderReady is { } ready)
        {
            _log.Info("data-parallel group generation {0} joined: {1} ranks from step {2}", g.Generation, g.WorldSize, ready.Step);
            StartStepping(ready);
        }
    }

    /// <summary>A member is gone: the survivors abort (through their abort handles) and restart from the last checkpoint.</summary>
    private bool LoseGroupMember(IActorRef member)
    {
        string id = Key(member);
        if (!_members.Remove(id, out var info)) return false;
        long generation = _group.Active?.Generation ?? 0;
        var survivors = _group.Lose(id, DateTime.UtcNow);
        if (survivors.Count > 0 || (_trainer is not null && _trainer.Trainer.Equals(member)))
        {
            _log.Warning("trainer {0} on {1} left data-parallel group generation {2}; {3} survivor(s) abort and resume from the last checkpoint",
                member.Path, info.Node, generation, survivors.Count);
            AbortMembers(survivors, generation, $"trainer on {info.Node} was lost");
            TrainerGone();
        }
        return true;
    }

    private void AbortMembers(IEnumerable<GroupMember> members, long generation, string reason)
    {
        var abort = new AbortTrainerGroup(_id, generation, reason);
        foreach (var m in members)
            if (_members.TryGetValue(m.Id, out var mi))
            {
                // The handle interrupts a collective in progress; the trainer itself covers one not yet joined.
                Context.ActorSelection(mi.Trainer.Path / GroupAbortHandle.Name).Tell(abort);
                mi.Trainer.Tell(abort);
            }
    }

    // ---------------------------------------------------------------- commands

    private void HandleRequestCheckpoint(RequestCheckpoint r)
    {
        using var span = CommandSpan("checkpoint", r.TraceParent);
        if (_trainer is null || _state is not (RunTraining or RunPaused))
        {
            span.Fail($"no trainer is training (run is {_state})");
            Sender.Tell(new CommandRejected("checkpoint", $"no trainer is training (run is {_state})"));
            return;
        }
        _checkpointWaiters.Add((Sender, _step));
        // The snapshot and write of this checkpoint become children of this span: one trace from the CLI.
        _trainer.Trainer.Tell(new SaveCheckpointNow("requested", TraceContext.Inject(span) ?? r.TraceParent));
    }

    private void HandleRequestStop(RequestStop r)
    {
        using var span = CommandSpan("stop", r.TraceParent);
        _stopRequested = true;
        if (_state == RunFinishedState || _trainer is null)
        {
            string? last = _checkpoints.Count > 0 ? _checkpoints[_checkpoints.Keys.Max()] : null;
            _state = RunFinishedState;
            Sender.Tell(new RunStopped(_step, last));
            if (_settings.LeaveClusterWhenStopped)
                Timers.StartSingleTimer("leave", LeaveCluster.Instance, TimeSpan.FromSeconds(1));
            return;
        }
        _state = RunStopping;
        _stopWaiters.Add(Sender);
        _trainer.Trainer.Tell(new StopTraining("stop command", TraceContext.Inject(span) ?? r.TraceParent));
    }

    private void HandleLeaveCluster()
    {
        var cluster = Cluster.Get(Context.System);
        _log.Info("run stopped: asking every node to leave the cluster");
        foreach (var m in cluster.State.Members.Where(m => m.Address != cluster.SelfAddress))
            cluster.Leave(m.Address);
        cluster.Leave(cluster.SelfAddress);
    }

    // ---------------------------------------------------------------- failures and ticks

    private void HandleTerminated(Terminated t)
    {
        if (GroupMode && LoseGroupMember(t.ActorRef)) return;
        if (_trainer is not null && t.ActorRef.Equals(_trainer.Trainer))
        {
            _log.Warning("trainer on {0} is gone; waiting for a trainer to resume from the last checkpoint", _trainer.Node);
            TrainerGone();
            return;
        }
        if (_dataNodes.Remove(t.ActorRef, out var d))
            DataNodeLost(t.ActorRef, d.Node, "left the cluster");
    }

    private void HandleTick()
    {
        TryFormGroup();
        if (_state == RunTraining && _progress is { Paused: false } && _ledger.ReleaseOverdue(_settings.OverdueLeaseAfter, DateTime.UtcNow) is { } late)
        {
            _log.Warning("the batch at sample {0} (lease {1} on {2}) has not reached the trainer in {3}: leasing it again",
                late.Start, late.Id, late.Worker, _settings.OverdueLeaseAfter);
            GrantParked();
        }
    }

    private DataAccounting Accounting()
    {
        var counts = _progress?.Samples ?? LiteVae.Data.Pipeline.SampleCounts.Empty;
        return new DataAccounting(_progress?.Epoch ?? 0, _progress?.NextSample ?? _ledger.TrainerNext, counts.Trained, counts.Skipped,
            _progress?.DroppedBatches ?? 0, _ledger.Reissued, counts.ByReason);
    }

    private ClusterStatus BuildStatus()
    {
        var cluster = Cluster.Get(Context.System);
        var unreachable = cluster.State.Unreachable.Select(m => m.Address).ToHashSet();
        var members = cluster.State.Members
            .Select(m => new MemberInfo(m.Address.ToString(), m.Status.ToString(), m.Roles.Order().ToList(), !unreachable.Contains(m.Address)))
            .ToList();
        var queues = _dataNodes.Values.SelectMany(d => d.Last.Queues).ToList();
        if (_progress is not null)
            queues.Add(new QueueDepth(_progress.Node, "intake", _progress.IntakeDepth, _progress.IntakeCapacity));
        return new ClusterStatus(_state, _plan.RunDir, _step, _plan.MaxSteps, _progress?.ImagesPerSecond ?? 0,
            _progress?.DataWaitFraction ?? 0, _progress?.Losses ?? new Dictionary<string, double>(), queues, members,
            _checkpoints.Keys.ToList(), Accounting(), _latestJobs);
    }
}
