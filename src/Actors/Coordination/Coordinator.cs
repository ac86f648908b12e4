using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Ledger;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Training;
using static LiteVae.Actors.Protocol.ClientProtocol;
using static LiteVae.Actors.Protocol.DataProtocol;
using static LiteVae.Actors.Protocol.EvalProtocol;
using static LiteVae.Actors.Protocol.GroupProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Coordination;

/// <summary>
/// The cluster singleton that owns the run: run state, the step budget, shard leases (through the
/// <see cref="ShardLedger"/>), the checkpoint registry, evaluation jobs, and the answers to user commands.
/// It holds no tensors and does no heavy work, so it can live on any node with the coordinator role; a new
/// incarnation (its node was lost) rebuilds its state from the run directory and the trainer's report.
/// </summary>
public sealed class Coordinator : ReceiveActor, IWithTimers
{
    public const string RunWaiting = "waiting-for-trainer", RunStarting = "starting", RunTraining = "training",
        RunPaused = "paused", RunStopping = "stopping", RunFinishedState = "finished";

    private sealed class Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
    private sealed class LeaveCluster : INoSerializationVerificationNeeded { public static readonly LeaveCluster Instance = new(); }

    private sealed record TrainerInfo(IActorRef Trainer, IActorRef Intake, string Node, string Device) : INoSerializationVerificationNeeded;
    private sealed record DataNodeInfo(string Node, DataNodeHeartbeat Last) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunPlan _plan;
    private readonly ICheckpointStore _store;
    private readonly CoordinatorSettings _settings;
    private readonly string _id = Guid.NewGuid().ToString("N")[..12];
    private readonly ShardLedger _ledger;
    private readonly Dictionary<IActorRef, DataNodeInfo> _dataNodes = new();
    private readonly Dictionary<IActorRef, (string Node, string? Job)> _evaluators = new();
    private readonly Dictionary<string, (EvaluationStatus Status, RunEvaluation Request)> _jobs = new();
    // Checkpoints of queued and running evaluations, kept from retention until the job ends.
    private readonly Dictionary<string, IDisposable> _pins = new();
    // Jobs started by a checkpoint (eval each checkpoint), as opposed to a user's command.
    private readonly HashSet<string> _checkpointJobs = [];
    private readonly Queue<string> _queuedJobs = new();
    private readonly SortedDictionary<long, string> _checkpoints = new();
    private readonly List<(IActorRef Client, long AfterStep)> _checkpointWaiters = [];
    private readonly List<IActorRef> _stopWaiters = [];
    private readonly List<(string Worker, string Node, long AtStep, DateTime At)> _lostWorkers = [];

    private TrainerInfo? _trainer;
    private string _state = RunWaiting;
    private long _planVersion;
    private bool _planActive;
    private long _step;
    private TrainerProgress? _progress;
    private long _discarded;
    private int _jobCounter;
    private bool _stopRequested;
    private string? _failure;   // why the run cannot go on (it stops with this reason)
    // The run's span: parent of the trainer's step windows and checkpoints, and of the data nodes' shard reads.
    private System.Diagnostics.Activity? _runSpan;
    private string? RunTrace => TraceContext.Inject(_runSpan);
    private string RunId => Path.GetFileName(_plan.RunDir.TrimEnd('/'));

    // Data-parallel group (settings.Group.Trainers > 1): rank 0 is _trainer, the leader the data plane feeds.
    private readonly TrainerGroupState _group;
    private readonly Dictionary<string, TrainerInfo> _members = new();
    private readonly HashSet<string> _groupReady = [], _groupJoined = [];
    private TrainerReady? _leaderReady;
    private bool GroupMode => _settings.Group.Trainers > 1;

    public ITimerScheduler Timers { get; set; } = null!;

    public Coordinator(RunPlan plan, ICheckpointStore store, CoordinatorSettings settings)
    {
        (_plan, _store, _settings) = (plan, store, settings);
        _ledger = new ShardLedger(plan.Shards, plan.Seed);
        _group = new TrainerGroupState(settings.Group);

        Receive<Tick>(_ => HandleTick());
        // trainer
        Receive<RegisterTrainer>(HandleRegisterTrainer);
        Receive<TrainerReady>(HandleTrainerReady);
        Receive<SamplesConsumed>(HandleConsumed);
        Receive<SamplesDropped>(m => { if (m.CoordinatorId == _id) _ledger.Dropped(m.Samples); });
        Receive<TrainerProgress>(p =>
        {
            if (p.CoordinatorId != _id) return;
            (_progress, _step, _discarded) = (p, p.Step, p.DiscardedBatches);
            Context.System.EventStream.Publish(p);   // local progress display (litevae train)
        });
        Receive<TrainingFinished>(HandleFinished);
        Receive<GroupAddressesCreated>(HandleGroupAddresses);
        Receive<TrainerGroupJoined>(HandleGroupJoined);
        Receive<CheckpointEvents.CheckpointSaved>(HandleCheckpointSaved);
        Receive<CheckpointEvents.CheckpointFailed>(f =>
        {
            _log.Error("checkpoint of step {0} failed: {1}", f.Step, f.Reason);
            foreach (var (c, _) in _checkpointWaiters) c.Tell(new CommandRejected("checkpoint", $"writing the checkpoint failed: {f.Reason}"));
            _checkpointWaiters.Clear();
        });
        // data
        Receive<DataNodeHeartbeat>(HandleDataHeartbeat);
        Receive<RequestLease>(HandleRequestLease);
        Receive<LeaseRead>(m => { if (m.CoordinatorId == _id) TellClosed(_ledger.LeaseRead(m.LeaseId, m.SamplesInShard, m.Bad)); });
        Receive<LeaseFailed>(HandleLeaseFailed);
        Receive<DataStreamBroken>(HandleStreamBroken);
        // eval
        Receive<EvaluatorHeartbeat>(HandleEvaluatorHeartbeat);
        Receive<EvaluationStarted>(m => UpdateJob(m.JobId, s => s with { State = EvaluationStatus.Running, Node = m.Node }));
        Receive<EvaluationFinished>(HandleEvaluationFinished);
        // clients
        Receive<GetClusterStatus>(_ => Sender.Tell(BuildStatus()));
        Receive<RequestEvaluation>(HandleRequestEvaluation);
        Receive<GetEvaluation>(m => Sender.Tell(_jobs.TryGetValue(m.JobId, out var j)
            ? j.Status
            : new CommandRejected("eval", $"no evaluation job '{m.JobId}' (known: {string.Join(", ", _jobs.Keys.DefaultIfEmpty("none"))})")));
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
        _log.Info("coordinator {0} for {1}: {2} shards, {3} steps, {4} checkpoint(s) on disk",
            _id, _plan.RunDir, _plan.Shards.Count, _plan.MaxSteps, _checkpoints.Count);
        Timers.StartPeriodicTimer("tick", Tick.Instance, _settings.Tick, _settings.Tick);
    }

    protected override void PostStop()
    {
        foreach (var pin in _pins.Values) pin.Dispose();
        _pins.Clear();
        _runSpan?.SetTag(TelemetryTags.StepLast, _step);
        _runSpan.EndHeld();
    }

    /// <summary>A span for a client command, child of the CLI's span when the command carries its traceparent.</summary>
    private System.Diagnostics.Activity? CommandSpan(string command, string? traceParent) =>
        LiteVaeTelemetry.Default.Cluster.StartFrom($"coordinator {command}", System.Diagnostics.ActivityKind.Consumer, traceParent,
            [new(TelemetryTags.Command, command), new(TelemetryTags.RunId, RunId)]);

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
        if (_trainer is null)
        {
            _trainer = new TrainerInfo(r.Trainer, r.Intake, r.Node, r.Device);
            Context.Watch(r.Trainer);
            _state = RunStarting;
        }
        string? resume = _checkpoints.Count > 0 ? _checkpoints[_checkpoints.Keys.Max()] : null;
        _log.Info("starting trainer on {0} ({1})", r.Node, resume is null ? "fresh run" : $"resume from {resume}");
        _runSpan ??= LiteVaeTelemetry.Default.Train.StartHeld("train run", System.Diagnostics.ActivityKind.Internal, null,
        [
            new(TelemetryTags.RunId, RunId), new("litevae.run.dir", _plan.RunDir), new("litevae.run.max_steps", _plan.MaxSteps),
            new("litevae.run.shards", _plan.Shards.Count), new(TelemetryTags.StepFirst, _step), new("litevae.coordinator.id", _id),
        ]);
        r.Trainer.Tell(new StartTraining(_id, _plan.ExperimentHocon, _plan.RunDir, resume, _plan.MaxSteps,
            _plan.CheckpointEvery, _plan.LogEvery, RunTrace));
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

    /// <summary>The trainer (rank 0 of a group) is restored: open the data plan and let it step.</summary>
    private void StartStepping(TrainerReady r)
    {
        _ledger.Restore(r.Consumed);
        _step = r.Step;
        _planVersion++;
        _planActive = true;
        _state = _stopRequested ? RunStopping : RunTraining;
        _log.Info("trainer ready at step {0}; plan {1}; epoch {2}", r.Step, _planVersion, _ledger.CurrentEpoch);
        BroadcastPlan();
        _trainer!.Trainer.Tell(new BeginSteps(_id, _planVersion));
        if (_group.Active is { } g)
            foreach (var m in g.Ranks.Skip(1))
                _members[m.Id].Trainer.Tell(new BeginSteps(_id, _planVersion));   // followers step with the leader
        if (_stopRequested) _trainer.Trainer.Tell(new StopTraining("stop requested", null));
    }

    // ---------------------------------------------------------------- data-parallel group

    private void RegisterGroupMember(RegisterTrainer r)
    {
        string id = Key(r.Trainer);
        if (!_members.ContainsKey(id))
        {
            _members[id] = new TrainerInfo(r.Trainer, r.Intake, r.Node, r.Device);
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
        string? resume = _checkpoints.Count > 0 ? _checkpoints[_checkpoints.Keys.Max()] : null;
        _log.Info("data-parallel group generation {0}: {1} ({2})", g.Generation,
            string.Join(", ", g.Ranks.Select((m, i) => $"rank {i} {m.Node} {m.Device}")), resume is null ? "fresh run" : $"resume from {resume}");
        foreach (var m in g.Ranks)
            _members[m.Id].Trainer.Tell(new StartTraining(_id, _plan.ExperimentHocon, _plan.RunDir, resume, _plan.MaxSteps,
                _plan.CheckpointEvery, _plan.LogEvery, null));
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
                Context.ActorSelection(mi.Trainer.Path / DeviceTrainer.AbortHandleName).Tell(abort);
                mi.Trainer.Tell(abort);
            }
    }

    private void HandleConsumed(SamplesConsumed m)
    {
        if (m.CoordinatorId != _id) return;
        _step = Math.Max(_step, m.Step);
        TellClosed(_ledger.Consumed(m.Samples));
        if (_lostWorkers.Count > 0) ReleaseLostWorkers();
    }

    private void TellClosed(IReadOnlyList<int> closed)
    {
        foreach (int e in closed)
        {
            _log.Info("epoch {0} complete", e);
            _trainer?.Trainer.Tell(new EpochClosed(_id, e));
            if (_ledger.ClosedWithoutSamples(e)) StopForData(e);
        }
    }

    /// <summary>An epoch ended with not one sample trained: every sample bad or every shard abandoned. The next
    /// would end the same way, forever; stop with a reason the user can act on instead.</summary>
    private void StopForData(int epoch)
    {
        if (_failure is not null || _state is RunFinishedState) return;
        var acc = _ledger.Accounting(_discarded, _progress?.Duplicates ?? 0);
        _failure = $"epoch {epoch} ended without one readable sample ({acc.BadSamples} bad, {acc.AbandonedShards} shard(s) abandoned); " +
                   "check data.source with `litevae shards check`";
        _log.Error("{0}: stopping the run", _failure);
        _stopRequested = true;
        if (_trainer is null) return;
        _state = RunStopping;
        _trainer.Trainer.Tell(new StopTraining(_failure, null));
    }

    private void HandleFinished(TrainingFinished f)
    {
        if (f.CoordinatorId != _id) return;
        _step = f.Step;
        _state = RunFinishedState;
        _planActive = false;
        _planVersion++;
        BroadcastPlan();
        var acc = _ledger.Accounting(_discarded, _progress?.Duplicates ?? 0);
        _log.Info($"run finished at step {f.Step}; checkpoint {f.CheckpointPath ?? "none"}; samples: {acc.SamplesConsumed} consumed, " +
                  $"{acc.Duplicated} duplicated, {acc.Lost} lost, {acc.BadSamples} bad, {acc.Redelivered} redelivered (dropped), " +
                  $"{acc.ReLeasedShards} shard(s) re-leased, {acc.DiscardedBatches} batch(es) discarded (stale plan or repeats)");
        foreach (var w in _stopWaiters) w.Tell(new RunStopped(f.Step, f.CheckpointPath));
        _stopWaiters.Clear();
        string reason = _failure ?? (_stopRequested ? "stopped" : "step budget reached");
        Context.System.EventStream.Publish(new RunFinished(f.Step, f.CheckpointPath, reason, _failure is not null));
        if (_runSpan is not null)
        {
            _runSpan.SetTag(TelemetryTags.StepLast, f.Step);
            _runSpan.SetTag(TelemetryTags.Samples, acc.SamplesConsumed);
            _runSpan.SetTag("litevae.samples.duplicated", acc.Duplicated);
            _runSpan.SetTag("litevae.samples.redelivered", acc.Redelivered);
            _runSpan.SetTag("litevae.samples.lost", acc.Lost);
            _runSpan.SetTag(TelemetryTags.BadSamples, acc.BadSamples);
            _runSpan.SetTag(TelemetryTags.Reason, reason);
            if (_failure is not null) _runSpan.Fail(_failure);
            _runSpan.EndHeld();
            _runSpan = null;
        }
        if (_stopRequested && _settings.LeaveClusterWhenStopped)
            Timers.StartSingleTimer("leave", LeaveCluster.Instance, TimeSpan.FromSeconds(1));
    }

    private void HandleCheckpointSaved(CheckpointEvents.CheckpointSaved s)
    {
        if (!string.IsNullOrEmpty(s.Path)) _checkpoints[s.Step] = s.Path;
        for (int i = _checkpointWaiters.Count - 1; i >= 0; i--)
        {
            if (s.Step < _checkpointWaiters[i].AfterStep) continue;
            _checkpointWaiters[i].Client.Tell(s with { Path = _checkpoints.GetValueOrDefault(s.Step, s.Path) });
            _checkpointWaiters.RemoveAt(i);
        }
        if (_plan.EvalEachCheckpoint && !string.IsNullOrEmpty(s.Path) && s.Reason is "interval" or "final" && _evaluators.Count > 0)
        {
            SupersedeQueuedCheckpointJobs(s.Step);
            try { _checkpointJobs.Add(StartJob(s.Path, null, RunTrace)); }
            catch (Exception e) when (e is CheckpointNotFoundException or IOException)
            {
                _log.Warning("checkpoint of step {0} not evaluated: {1}", s.Step, e.Message);
            }
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

    private void TrainerGone()
    {
        _trainer = null;
        if (_state != RunFinishedState) _state = RunWaiting;
        // Everything in flight was meant for that trainer's weights: void it; the next trainer's
        // checkpoint says what to read again.
        _ledger.VoidAllLeases();
        _planActive = false;
        _planVersion++;
        BroadcastPlan();
    }

    // ---------------------------------------------------------------- data

    private static string Key(IActorRef worker) => worker.Path.ToSerializationFormat();

    private DataPlan CurrentPlan() =>
        new(_id, _planVersion, _plan.ExperimentHocon, _planActive ? _trainer?.Intake : null, RunTrace);

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
        if (!_planActive || _state is not (RunTraining or RunPaused))
        {
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, $"run is {_state}"));
            return;
        }
        var g = _ledger.NextLease(Key(r.Worker));
        if (g is null)
        {
            r.Worker.Tell(new NoLeaseAvailable(_id, _planVersion, "every shard of the open epochs is leased"));
            return;
        }
        r.Worker.Tell(new ShardLeased(_id, _planVersion, g.LeaseId, g.Epoch, g.Shard, g.ShardPath, _plan.Seed, g.Skip, RunTrace));
    }

    private void HandleLeaseFailed(LeaseFailed f)
    {
        if (f.CoordinatorId != _id) return;
        _log.Warning("lease {0} failed: {1}", f.LeaseId, f.Reason);
        TellClosed(_ledger.LeaseFailed(f.LeaseId));
    }

    private void HandleStreamBroken(DataStreamBroken b)
    {
        if (b.CoordinatorId != "" && b.CoordinatorId != _id) return;
        _log.Warning("data node {0}: {1}", b.Worker.Path.Address, b.Reason);
        DeferWorkerLost(Key(b.Worker), b.Worker.Path.Address.ToString());
    }

    /// <summary>
    /// A lost worker's shards are re-leased once the batches it already delivered have left the trainer's
    /// intake (a few steps) and their samples are marked consumed, so re-reading skips them instead of
    /// duplicating them; after 3 s at most, so a stalled trainer cannot hold the shards back.
    /// </summary>
    private void DeferWorkerLost(string worker, string node)
    {
        if (_lostWorkers.Any(w => w.Worker == worker)) return;
        _lostWorkers.Add((worker, node, _step, DateTime.UtcNow));
        ReleaseLostWorkers();
    }

    private void ReleaseLostWorkers()
    {
        int drain = (_progress?.IntakeCapacity ?? 4) + 1;
        for (int i = _lostWorkers.Count - 1; i >= 0; i--)
        {
            var w = _lostWorkers[i];
            if (_step - w.AtStep <= drain && DateTime.UtcNow - w.At < TimeSpan.FromSeconds(3) && _planActive) continue;
            _lostWorkers.RemoveAt(i);
            int n = _ledger.WorkerLost(w.Worker);
            _log.Warning("data node {0} is gone; re-leasing its {1} unfinished shard(s)", w.Node, n);
        }
    }

    // ---------------------------------------------------------------- eval

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
        _trainer.Trainer.Tell(new SaveCheckpointNow("requested", r.TraceParent));
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
        _trainer.Trainer.Tell(new StopTraining("stop command", r.TraceParent));
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
        {
            DeferWorkerLost(Key(t.ActorRef), d.Node);
            return;
        }
        if (_evaluators.Remove(t.ActorRef, out var e))
        {
            if (e.Job is not null)
                HandleEvaluationFinished(new EvaluationFinished(e.Job, false, $"eval node {e.Node} was lost", [], null, 0, 0));
            _log.Warning("evaluator on {0} is gone", e.Node);
        }
    }

    private void HandleTick()
    {
        TryFormGroup();
        if (_lostWorkers.Count > 0) ReleaseLostWorkers();
        if (_state == RunTraining && _progress is { Paused: false })
        {
            int stale = _ledger.ReleaseStale(_settings.StaleLeaseAfter);
            if (stale > 0) _log.Warning("{0} lease(s) read but not consumed for {1}: re-leasing", stale, _settings.StaleLeaseAfter);
        }
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
            _checkpoints.Keys.ToList(), _ledger.Accounting(_discarded, _progress?.Duplicates ?? 0),
            _jobs.Values.Select(j => j.Status).TakeLast(10).ToList());
    }
}
