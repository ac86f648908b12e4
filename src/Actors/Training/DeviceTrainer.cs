using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Data;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Audit;
using LiteVae.Data.Pipeline;
using LiteVae.Model.Distributed;
using static LiteVae.Actors.Protocol.GroupProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Training;

/// <param name="Bind">Reads the experiment the Coordinator hands over (this trainer checks its data limits).</param>
/// <param name="Storage">Whether this node shares the run's directory; when it does not, the trainer keeps its own and
/// fetches the checkpoint it resumes from (null: always shared).</param>
public sealed record TrainerSettings(string Node, TimeSpan RegisterInterval, TimeSpan ProgressInterval, ExperimentBinder Bind,
    Transfer.StorageSettings? Storage = null);

/// <summary>
/// Owns one device. Runs on a pinned thread (gpu-dispatcher) and advances one training step per self-sent
/// <see cref="TrainStep"/>, so Pause, SaveCheckpointNow, Stop and status messages interleave with steps
/// without any async code touching tensors. Each step takes from the <see cref="IntakeBuffer"/> exactly the
/// batch that starts where the run stands in its sample order, so every sample is trained once and in order.
/// The engine is built on the first <see cref="StartTraining"/>, never in the constructor, and disposed in
/// PostStop. A crash stops this actor; its BackoffSupervisor starts a fresh one, which registers again and is
/// restarted from the last checkpoint. A checkpoint copies weights, optimizer and data position to host memory on
/// this thread (the only part that stalls training) and hands them, with the training records of the steps since
/// the last one, to the <see cref="Checkpointer"/>. In a data-parallel group, rank 0 (the leader) steps like a lone
/// trainer and sends each global batch to the followers, which step whenever the leader's batch arrives; a lost
/// member or a failed collective aborts the group, and this incarnation throws to be restarted for the next one.
/// </summary>
public sealed class DeviceTrainer : ReceiveActor, IWithTimers
{
    private sealed class TrainStep : INoSerializationVerificationNeeded
    {
        public static readonly TrainStep Instance = new();
        private TrainStep() { }
    }

    private sealed class RegisterTick : INoSerializationVerificationNeeded { public static readonly RegisterTick Instance = new(); }
    private sealed class ProgressTick : INoSerializationVerificationNeeded { public static readonly ProgressTick Instance = new(); }
    private sealed class IntakeClosed : INoSerializationVerificationNeeded { public static readonly IntakeClosed Instance = new(); }

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TrainerSettings _settings;
    private readonly TrainingEngineFactory _factory;
    private readonly IntakeBuffer _intake;
    private readonly IActorRef _intakeActor;
    private readonly IActorRef _checkpointer;
    private readonly IActorRef _coordinator;

    private ITrainingEngine? _engine;
    private StartTraining? _start;
    private ExperimentConfig? _experiment;
    private IReadOnlyList<string> _shardNames = [];
    private bool _running, _paused, _finished, _stepScheduled;
    private IReadOnlyDictionary<string, double> _losses = new Dictionary<string, double>();
    private TrainingTracer? _tracer;   // step metrics, one span per log window, checkpoint snapshot spans
    private string? _checkpointTrace;  // the span of the command (checkpoint, stop) the next checkpoint is for
    private TrainingCurves? _curves;   // tb/, written by the rank that reads the losses
    private long _curvesFrom;

    // Where the run stands in its data (saved with every checkpoint) and the samples of the steps since the last one.
    private long _next;
    private SampleAccount _account = new();
    private long _droppedBefore, _intakeDroppedAtStart;
    private readonly List<StepRecord> _records = [];

    // The current log window.
    private long _windowStart = Stopwatch.GetTimestamp();
    private DateTime _windowStartUtc = DateTime.UtcNow;
    private long _windowFirstStep;
    private long? _waitStart;
    private double _windowWait, _windowStepTime;
    private int _windowImages, _windowSteps;
    private double _imagesPerSecond, _stepSeconds, _waitFraction;

    public ITimerScheduler Timers { get; set; } = null!;

    public DeviceTrainer(TrainerSettings settings, TrainingEngineFactory factory, IntakeBuffer intake, IActorRef intakeActor,
        IActorRef checkpointer, IActorRef coordinator)
    {
        (_settings, _factory, _intake, _intakeActor, _checkpointer, _coordinator) = (settings, factory, intake, intakeActor, checkpointer, coordinator);
        Receive<RegisterTick>(_ => _coordinator.Tell(new RegisterTrainer(Self, _intakeActor, _settings.Node, _engine?.Device ?? "pending", _intake.Capacity)));
        Receive<StartTraining>(HandleStart);
        Receive<Transfer.Fetched>(HandleResumeFetched);
        Receive<Transfer.FetchFailed>(f =>
        {
            _fetching = false;
            StartFailed($"could not fetch the checkpoint to resume from ({f.Request.Checkpoint}) from the run's home: {f.Reason}");
        });
        Receive<BeginSteps>(HandleBegin);
        Receive<TrainStep>(_ => DoStep());
        Receive<IntakeClosed>(_ => { _stepScheduled = false; _running = false; _log.Warning("the intake closed; training stops"); });
        Receive<PauseTraining>(_ => { _paused = true; ReportProgress(); });
        Receive<ResumeTraining>(_ => { _paused = false; ScheduleStep(); ReportProgress(); });
        Receive<SaveCheckpointNow>(m =>
        {
            (_checkpointRequested, _checkpointTrace) = (m.Reason, m.TraceParent);
            if (!_stepScheduled || _paused) CheckpointNow(m.Reason, false);
        });
        Receive<StopTraining>(m => { _checkpointTrace = m.TraceParent; Finish(m.Reason); });
        Receive<CheckpointEvents.CheckpointSaved>(HandleSaved);
        Receive<CheckpointEvents.CheckpointFailed>(HandleCheckpointFailed);
        Receive<FinalCheckpoint>(_ => HandleFinalCheckpoint());
        Receive<ProgressTick>(_ => { if (!_running || _paused || _waitStart is not null) ReportProgress(); });
        ReceiveGroupMessages();
    }

    public static Props Props(TrainerSettings settings, TrainingEngineFactory factory, IntakeBuffer intake, IActorRef intakeActor,
        IActorRef checkpointer, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new DeviceTrainer(settings, factory, intake, intakeActor, checkpointer, coordinator));

    protected override void PreStart()
    {
        Context.ActorOf(Akka.Actor.Props.Create(() => new GroupAbortHandle(_holder)), GroupAbortHandle.Name);
        Timers.StartPeriodicTimer("register", RegisterTick.Instance, TimeSpan.Zero, _settings.RegisterInterval);
        Timers.StartPeriodicTimer("progress", ProgressTick.Instance, _settings.ProgressInterval, _settings.ProgressInterval);
    }

    protected override void PostStop()
    {
        _engine?.Dispose();
        _engine = null;
        foreach (var w in _finalWaiters) w.Tell(new FinalCheckpointSkipped("trainer stopped"));
    }

    private bool IsCurrent(string coordinatorId) => _start is not null && _start.CoordinatorId == coordinatorId;

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message.Split('\n', 2)[0].Trim();
    }

    private bool _fetching;

    /// <summary>On a node that does not share the run's directory, the run lives in this node's own copy: the config
    /// is written there and the checkpoint to resume from is fetched from the run's home first.</summary>
    private void HandleStart(StartTraining st)
    {
        if (_fetching) return;   // the coordinator repeats StartTraining while the checkpoint is on its way
        if (_start is null && _settings.Storage is { } storage && st.Home is { } home)
        {
            string local = storage.LocalRunDir(home, st.RunDir);
            if (local != st.RunDir)
            {
                try
                {
                    Directory.CreateDirectory(local);
                    if (!File.Exists(Model.Checkpoints.RunDirectory.ConfigOf(local)))
                        File.WriteAllText(Model.Checkpoints.RunDirectory.ConfigOf(local), st.ExperimentHocon);
                }
                catch (IOException e)
                {
                    StartFailed($"{local}: this node's copy of the run directory cannot be written ({e.Message}); set litevae.run.run-dir or runs-root to a writable folder");
                    return;
                }
                st = st with { RunDir = local };
                if (st.ResumeFrom is { } remote)
                {
                    Timers.Cancel("register");
                    _fetching = true;
                    _log.Info("fetching the checkpoint to resume from, {0}, from the run's home {1} into {2}", remote, home.Server.Path.Address, local);
                    Context.ActorOf(Transfer.CheckpointFetch.Props(new Transfer.FetchRequest(remote, [home.Server],
                        Model.Checkpoints.RunDirectory.CheckpointsOf(local), storage.MayUseInPlace, new Model.Checkpoints.RetentionPolicy(), storage, st)));
                    return;
                }
            }
        }
        Begin(st);
    }

    private void HandleResumeFetched(Transfer.Fetched f)
    {
        _fetching = false;
        var st = (StartTraining)f.Request.Tag!;
        _log.Info("resume checkpoint fetched: {0} ({1:F1} MiB copied in {2:F1} s)", f.Path, f.Bytes / 1048576.0, f.Seconds);
        Begin(st with { ResumeFrom = f.Path });
    }

    private void Begin(StartTraining st)
    {
        if (_start is not null)
        {
            if (st.CoordinatorId != _start.CoordinatorId && _engine is not null)
            {
                // A new Coordinator (the old one's node left): it learns where these weights are.
                _log.Info("new coordinator {0}; continuing from step {1}", st.CoordinatorId, _engine.Step);
                _start = st with { ResumeFrom = null, RunDir = _start.RunDir };
                _running = false;
                _coordinator.Tell(new TrainerReady(st.CoordinatorId, _engine.Step, _next));
            }
            return;
        }
        Timers.Cancel("register");
        _start = st;
        _log.Info("initialising trainer for {0} (resume from {1})", st.RunDir, st.ResumeFrom ?? "nothing: fresh run");
        // Building the model and restoring a checkpoint is work a user waits on: a child of the run's start (or
        // resume) marker, which the coordinator ended before sending StartTraining, so it is never a dangling parent.
        using var startSpan = LiteVaeTelemetry.Default.Train.StartFrom("trainer start", ActivityKind.Internal, st.TraceParent,
            [new(TelemetryTags.Node, _settings.Node), new(TelemetryTags.Checkpoint, st.ResumeFrom)]);
        DataPosition position;
        try
        {
            _experiment = _settings.Bind(st.ExperimentHocon, st.RunDir);
            _shardNames = _experiment.Data.ResolveShards().Select(s => s.Name).ToList();
            _engine = _factory();
            _holder.Engine = _engine as Distributed.IDataParallelEngine;
            var restored = _engine.Initialize(st.ExperimentHocon, st.RunDir, st.ResumeFrom);
            position = restored.DataPosition is null
                ? DataPosition.Start(st.OrderFingerprint)
                : DataPosition.Parse(restored.DataPosition, st.ResumeFrom ?? st.RunDir);
            if (position.Order != st.OrderFingerprint)
                throw new InvalidDataException(
                    $"{st.ResumeFrom}: the checkpoint was trained on another sample order ({position.Order}) than data.source gives now " +
                    $"({st.OrderFingerprint}): the shard files, their sample counts or the data order settings changed. Point data.source at " +
                    "the run's own shards, or start a new run from these weights with --init-from.");
            startSpan?.SetTag(TelemetryTags.Device, _engine.Device);
            startSpan?.SetTag(TelemetryTags.Step, restored.Step);
            if (st.ResumeFrom is not null)
            {
                _lastCheckpointStep = restored.Step;
                _checkpointer.Tell(new Checkpointer.MarkResume(st.RunDir, restored.Step));
            }
        }
        catch (Exception e)
        {
            startSpan.Fail(e);
            // A bad config, a checkpoint that does not fit or a missing libtorch fails the same way every
            // time: report it (the single-process `train` ends with this error) and offer this trainer again
            // later instead of crash-looping under the backoff supervisor.
            _log.Error(e, "trainer could not start: {0}", Innermost(e));
            _engine?.Dispose();
            _engine = null;
            _holder.Engine = null;
            StartFailed(Innermost(e), logged: true);
            return;
        }
        _next = position.NextSample;
        _account = SampleAccount.From(position.Samples);
        (_droppedBefore, _intakeDroppedAtStart) = (position.DroppedBatches, _intake.Dropped);
        _intake.Reset(_next);
        (_curves, _curvesFrom) = (null, _engine.Step);   // opened by the first window this rank logs
        _tracer = new TrainingTracer(LiteVaeTelemetry.Default, Path.GetFileName(st.RunDir.TrimEnd('/')), _settings.Node, _engine.Device, st.TraceParent);
        Context.System.EventStream.Publish(new TrainerRestored(_engine.Step, st.ResumeFrom, _engine.Device, st.MaxSteps));
        _coordinator.Tell(new TrainerReady(st.CoordinatorId, _engine.Step, _next));
    }

    private void StartFailed(string reason, bool logged = false)
    {
        if (!logged) _log.Error("trainer could not start: {0}", reason);
        _start = null;
        Context.System.EventStream.Publish(new TrainerStartFailed(reason));
        Timers.StartPeriodicTimer("register", RegisterTick.Instance, _settings.RegisterInterval * 10, _settings.RegisterInterval * 10);
    }

    private void HandleBegin(BeginSteps b)
    {
        if (!IsCurrent(b.CoordinatorId) || _engine is null) return;
        _running = true;
        ResetWindow();
        if (IsFollower)
        {
            _log.Info("rank {0} follows the leader from step {1}", _group!.Rank, _engine.Step);
            _stepScheduled = true;
            Self.Tell(FollowTick.Instance);
            return;
        }
        _log.Info("training from step {0} to {1}, sample {2} of the order", _engine.Step, _start!.MaxSteps, _next);
        // The weights a fresh run starts from are a checkpoint too: the held-out evaluation scores them on the
        // eval node like any other, so a run's gain is measured from where it began.
        if (_engine.Step == 0 && _lastCheckpointStep < 0 && _experiment is { EvalData: not null, Eval.Images: > 0 })
            CheckpointNow("start", false);
        if (_engine.Step >= _start.MaxSteps) Finish("step budget already reached");
        else ScheduleStep();
    }

    private void ScheduleStep()
    {
        if (_stepScheduled || !_running || _paused || _finished) return;
        _stepScheduled = true;
        Self.Tell(TrainStep.Instance);
    }

    private void DoStep()
    {
        _stepScheduled = false;
        if (!_running || _paused || _finished || _engine is null) return;
        if (!_intake.TryTake(out var batch))
        {
            _waitStart ??= Stopwatch.GetTimestamp();
            _stepScheduled = true;
            _intake.WaitAsync().PipeTo(Self,
                success: more => more ? TrainStep.Instance : IntakeClosed.Instance,
                failure: _ => IntakeClosed.Instance);
            return;
        }
        double stepWait = 0;
        if (_waitStart is long ws)
        {
            stepWait = Stopwatch.GetElapsedTime(ws).TotalSeconds;
            _windowWait += stepWait;
            _waitStart = null;
        }
        IReadOnlyDictionary<string, double>? losses = null;
        bool trained = batch.Count > 0;   // a span whose samples were all bad is passed over without a step
        using (batch)
        {
            if (trained)
            {
                bool logNow = (_engine.Step + 1) % _start!.LogEvery == 0;
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    losses = _engine.TrainStep(batch, logNow);
                }
                catch (Exception e) when (_group is not null)
                {
                    throw new GroupLostException($"rank 0 lost the group at step {_engine.Step}: {e.Message}", e);
                }
                double stepSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                _windowStepTime += stepSeconds;
                _tracer?.Step(stepSeconds, stepWait, batch.Count);
                _windowImages += batch.Count;
                _windowSteps++;
            }
            _next = batch.End;
            _account.Add(batch.Count, batch.Skipped);
            _records.Add(new StepRecord(_engine.Step, batch.Samples, batch.Skipped));
            _coordinator.Tell(new BatchTrained(_start!.CoordinatorId, _engine.Step, _next));
        }
        if (losses is not null)
        {
            _losses = new Dictionary<string, double>(losses);
            CloseWindow();
            ReportProgress();
        }
        try
        {
            var d = _experiment!.Data;
            _account.Check(d.MaxBadFraction, d.MinSamplesForBadCheck, _start.SamplesPerEpoch, ShardName);
        }
        catch (DataQualityException e)
        {
            Finish("the data is bad", e.Message);   // the run ends as failed, with this message
            return;
        }
        long step = _engine.Step;
        if (_checkpointRequested is { } reason) CheckpointNow(reason, false);
        else if (trained && step % _start.CheckpointEvery == 0) CheckpointNow("interval", true);
        if (step >= _start.MaxSteps) Finish("step budget reached");
        else ScheduleStep();
    }

    private string ShardName(int shard) => shard >= 0 && shard < _shardNames.Count ? _shardNames[shard] : $"#{shard}";

    /// <summary>The run's position in its data, as a checkpoint saves it.</summary>
    private DataPosition Position =>
        new(_start!.OrderFingerprint, _next, _account.Counts, _droppedBefore + _intake.Dropped - _intakeDroppedAtStart);

    private void ResetWindow()
    {
        _windowStart = Stopwatch.GetTimestamp();
        _windowStartUtc = DateTime.UtcNow;
        _windowFirstStep = (_engine?.Step ?? 0) + 1;
        _windowWait = _windowStepTime = 0;
        _windowImages = _windowSteps = 0;
    }

    private void CloseWindow()
    {
        double wall = Stopwatch.GetElapsedTime(_windowStart).TotalSeconds;
        if (_waitStart is long ws) { _windowWait += Stopwatch.GetElapsedTime(ws).TotalSeconds; _waitStart = Stopwatch.GetTimestamp(); }
        _imagesPerSecond = wall > 0 ? _windowImages / wall : 0;
        _stepSeconds = _windowSteps > 0 ? _windowStepTime / _windowSteps : 0;
        _waitFraction = wall > 0 ? Math.Clamp(_windowWait / wall, 0, 1) : 0;
        if (_engine is not null && _windowSteps > 0)
        {
            _tracer?.Window(_windowFirstStep, _engine.Step, _windowStartUtc, wall, _windowImages, _windowWait, _losses);
            WriteCurves();
        }
        ResetWindow();
    }

    private void WriteCurves()
    {
        try
        {
            _curves ??= new TrainingCurves(_start!.RunDir, _engine!.Device, _curvesFrom);
            _curves.Window(_engine!.Step, _losses, _imagesPerSecond, _waitFraction, _stepSeconds, _engine.SkippedSteps);
        }
        catch (IOException e)
        {
            // Curves are for people watching; a full or read-only disk must not stop the training (checkpoints will say so).
            _log.Warning("could not write the training curves to {0}/tb: {1}", _start!.RunDir, e.Message);
        }
    }

    private void ReportProgress()
    {
        if (_start is null || _engine is null || IsFollower) return;   // the leader reports for the group
        var p = Position;
        int epoch = _start.SamplesPerEpoch > 0 ? (int)(_next / _start.SamplesPerEpoch) : 0;
        _coordinator.Tell(new TrainerProgress(_start.CoordinatorId, _settings.Node, _engine.Step, _imagesPerSecond, _stepSeconds,
            _waitFraction, _losses, _intake.Depth, _intake.Capacity, _next, epoch, p.Samples, p.DroppedBatches, _paused));
    }

    // ---------------------------------------------------------------- checkpoints and the end of the run

    private readonly List<IActorRef> _finalWaiters = [];
    private string? _checkpointRequested;
    private long _lastCheckpointStep = -1, _savingStep = -1;
    private string? _lastCheckpointPath;
    private bool _finishAfterSave;
    private string? _failure;   // why the run stops on an error (reported with TrainingFinished)

    private void CheckpointNow(string reason, bool droppable)
    {
        _checkpointRequested = null;
        string? commandTrace = _checkpointTrace;   // only this checkpoint answers that command
        _checkpointTrace = null;
        if (_engine is null || _start is null || IsFollower) return;   // rank 0 writes the group's checkpoints
        if (_engine.Step == _lastCheckpointStep || _engine.Step == _savingStep)
        {
            // Already on disk (or being written): tell whoever asked.
            if (_engine.Step == _lastCheckpointStep && !droppable)
                _coordinator.Tell(new CheckpointEvents.CheckpointSaved(_engine.Step, _lastCheckpointPath ?? "", reason, 0));
            return;
        }
        _savingStep = _engine.Step;
        // The snapshot is the part of a checkpoint that stalls training: its own span and histogram.
        var span = _tracer?.StartSnapshot(_engine.Step, reason, commandTrace);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        ICheckpointSnapshot snapshot;
        try { snapshot = _engine.Snapshot(Position.ToJson()); }
        catch (Exception e)
        {
            span.Fail(e);
            span.EndHeld();
            throw;
        }
        LiteVaeTelemetry.Default.CheckpointDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds,
            new KeyValuePair<string, object?>(TelemetryTags.Phase, "snapshot"));
        string? parent = TraceContext.Inject(span);
        span.EndHeld();
        var records = _records.ToArray();
        _records.Clear();
        _checkpointer.Tell(new Checkpointer.Write(snapshot, _start.RunDir, reason, droppable, Self, records, ShardName, parent));
    }

    /// <summary>Stops stepping, writes the final checkpoint and then tells the Coordinator; <paramref name="failure"/>:
    /// the run cannot go on (it ends as failed).</summary>
    private void Finish(string reason, string? failure = null)
    {
        if (_engine is null || _start is null || IsFollower) return;   // followers end when the leader says so
        if (!_finished) _log.Info("finishing at step {0}: {1}", _engine.Step, reason);
        if (!_finished && _group is { Rank: 0 })
        {
            try { GroupEngine.EndGroup(); }
            catch (Exception e) { _log.Warning("telling the followers to stop failed: {0}", e.Message); }
        }
        _failure ??= failure;
        _finished = true;
        _running = false;
        _finishAfterSave = true;
        ReportProgress();
        if (_engine.Step == _lastCheckpointStep) AnnounceFinished();
        else CheckpointNow("final", false);
    }

    private void AnnounceFinished()
    {
        if (!_finishAfterSave || _start is null || _engine is null) return;
        _finishAfterSave = false;
        _coordinator.Tell(new TrainingFinished(_start.CoordinatorId, _engine.Step, _lastCheckpointPath, _failure));
    }

    private void HandleSaved(CheckpointEvents.CheckpointSaved s)
    {
        if (s.Step > _lastCheckpointStep)
        {
            _lastCheckpointStep = s.Step;
            _lastCheckpointPath = s.Path;
        }
        if (s.Step == _savingStep) _savingStep = -1;
        if (_engine is not null && s.Step == _engine.Step)
        {
            foreach (var w in _finalWaiters) w.Tell(s);
            _finalWaiters.Clear();
            AnnounceFinished();
        }
    }

    private void HandleCheckpointFailed(CheckpointEvents.CheckpointFailed f)
    {
        if (f.Step == _savingStep) _savingStep = -1;
        foreach (var w in _finalWaiters) w.Tell(new FinalCheckpointSkipped($"checkpoint failed: {f.Reason}"));
        _finalWaiters.Clear();
        // The run was ending on this checkpoint: without it nothing would ever announce the end (the run hung,
        // re-leasing batches no one takes). It ends as failed, naming the checkpoint a resume would start from.
        if (_finishAfterSave && _engine is not null && f.Step == _engine.Step)
        {
            _failure ??= $"the final checkpoint (step {f.Step}) could not be written: {f.Reason}; the last complete one is " +
                         (_lastCheckpointPath ?? "none (a resume starts from scratch)");
            AnnounceFinished();
        }
    }

    private void HandleFinalCheckpoint()
    {
        if (_engine is null || _start is null || _engine.Step == 0 || IsFollower)
        {
            Sender.Tell(new FinalCheckpointSkipped(IsFollower ? "a follower rank: rank 0 writes the checkpoints" : "nothing trained yet"));
            return;
        }
        if (_engine.Step == _lastCheckpointStep)
        {
            Sender.Tell(new CheckpointEvents.CheckpointSaved(_engine.Step, _lastCheckpointPath ?? "", "final", 0));
            return;
        }
        _finalWaiters.Add(Sender);
        _running = false;
        _finished = true;
        CheckpointNow("shutdown", false);
    }

    // ---------------------------------------------------------------- data-parallel group

    private sealed class FollowTick : INoSerializationVerificationNeeded { public static readonly FollowTick Instance = new(); }

    /// <summary>Thrown to let the BackoffSupervisor replace this trainer (it restarts from the last checkpoint).</summary>
    public sealed class GroupLostException(string message, Exception? inner = null) : Exception(message, inner);

    private readonly EngineHolder _holder = new();
    private JoinTrainerGroup? _group;   // the generation this trainer joined (null: training alone)
    private bool IsFollower => _group is { Rank: > 0 };

    private IDataParallelEngine GroupEngine =>
        _engine as IDataParallelEngine ?? throw new InvalidOperationException("this node's training engine cannot be a data-parallel rank.");

    private void ReceiveGroupMessages()
    {
        Receive<CreateGroupAddresses>(HandleCreateAddresses);
        Receive<JoinTrainerGroup>(HandleJoin);
        Receive<FollowTick>(_ => Follow());
        // Sent to the trainer's own (incarnation-specific) ref as well, for a member that is not inside a collective.
        Receive<AbortTrainerGroup>(m => { if (IsCurrent(m.CoordinatorId)) throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"); });
        Receive<GroupAborted>(m => throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"));
    }

    private void HandleCreateAddresses(CreateGroupAddresses m)
    {
        if (!IsCurrent(m.CoordinatorId) || _engine is null) return;
        var addresses = GroupEngine.CreateGroupAddresses(m.WorldSize);
        _coordinator.Tell(new GroupAddressesCreated(m.CoordinatorId, m.Generation, addresses));
    }

    private void HandleJoin(JoinTrainerGroup m)
    {
        if (!IsCurrent(m.CoordinatorId) || _engine is null) return;
        _log.Info("joining the data-parallel group (generation {0}) as rank {1} of {2}", m.Generation, m.Rank, m.WorldSize);
        _holder.Generation = m.Generation;
        try
        {
            GroupEngine.JoinGroup(m.Generation, m.Rank, m.WorldSize, m.Addresses);
        }
        catch (Exception e)
        {
            throw new GroupLostException($"joining generation {m.Generation} as rank {m.Rank} failed: {e.Message}", e);
        }
        _group = m;
        _coordinator.Tell(new TrainerGroupJoined(m.CoordinatorId, m.Generation, m.Rank));
    }

    /// <summary>Follower: one step with the leader's batch per message, so other messages interleave.</summary>
    private void Follow()
    {
        _stepScheduled = false;
        if (!_running || _finished || _engine is null) return;
        FollowerStep r;
        try
        {
            r = GroupEngine.FollowStep();
        }
        catch (Exception e)
        {
            throw new GroupLostException($"rank {_group?.Rank} lost the group at step {_engine.Step}: {e.Message}", e);
        }
        if (r.Ended)
        {
            _log.Info("rank {0}: the leader ended the run at step {1}", _group?.Rank, r.Step);
            _finished = true;
            _running = false;
            return;
        }
        _stepScheduled = true;
        Self.Tell(FollowTick.Instance);
    }
}
