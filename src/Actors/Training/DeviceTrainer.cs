using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Data;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Ledger;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using static LiteVae.Actors.Protocol.GroupProtocol;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Training;

public sealed record TrainerSettings(string Node, TimeSpan RegisterInterval, TimeSpan ProgressInterval);

/// <summary>
/// Owns one device. Runs on a pinned thread (gpu-dispatcher) and advances one training step per self-sent
/// <see cref="TrainStep"/>, so Pause, SaveCheckpointNow, Stop and status messages interleave with steps
/// without any async code touching tensors. The engine (model, optimizers) is built on the first
/// <see cref="StartTraining"/>, never in the constructor, and disposed in PostStop. A crash stops this actor;
/// its BackoffSupervisor starts a fresh one, which registers again and is restarted from the last checkpoint.
/// </summary>
public sealed class DeviceTrainer : ReceiveActor, IWithTimers
{
    public sealed class TrainStep : INoSerializationVerificationNeeded
    {
        public static readonly TrainStep Instance = new();
        private TrainStep() { }
    }

    /// <summary>Local: write a final checkpoint (CoordinatedShutdown); answered with CheckpointSaved or FinalCheckpointSkipped.</summary>
    public sealed class FinalCheckpoint : INoSerializationVerificationNeeded
    {
        public static readonly FinalCheckpoint Instance = new();
        private FinalCheckpoint() { }
    }

    public sealed record FinalCheckpointSkipped(string Reason) : INoSerializationVerificationNeeded;

    /// <summary>Published on the local event stream when building or restoring the engine failed.</summary>
    public sealed record TrainerStartFailed(string Reason) : INoSerializationVerificationNeeded;

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message.Split('\n', 2)[0].Trim();
    }

    /// <summary>Published on the local event stream once the engine is built (and restored).</summary>
    public sealed record TrainerRestored(long Step, string? Checkpoint, string Device, long MaxSteps = 0) : INoSerializationVerificationNeeded;

    private sealed class RegisterTick : INoSerializationVerificationNeeded { public static readonly RegisterTick Instance = new(); }
    private sealed class ProgressTick : INoSerializationVerificationNeeded { public static readonly ProgressTick Instance = new(); }
    private sealed class IntakeClosed : INoSerializationVerificationNeeded { public static readonly IntakeClosed Instance = new(); }
    private sealed class FollowTick : INoSerializationVerificationNeeded { public static readonly FollowTick Instance = new(); }

    /// <summary>From the abort handle: the group was aborted; this incarnation's state is garbage.</summary>
    private sealed record GroupAborted(string Reason) : INoSerializationVerificationNeeded;

    /// <summary>Thrown to let the BackoffSupervisor replace this trainer (it restarts from the last checkpoint).</summary>
    public sealed class GroupLostException(string message, Exception? inner = null) : Exception(message, inner);

    /// <summary>The child the Coordinator sends <see cref="AbortTrainerGroup"/> to: it runs on the default
    /// dispatcher, so it is never stuck behind a collective call on the trainer's thread.</summary>
    public const string AbortHandleName = "group-abort";

    /// <summary>Shared with the abort handle: the engine and the generation this incarnation joins (-1: none).</summary>
    private sealed class EngineHolder
    {
        public volatile IDataParallelEngine? Engine;
        private long _generation = -1;
        public long Generation { get => Volatile.Read(ref _generation); set => Volatile.Write(ref _generation, value); }
    }

    private sealed class GroupAbortHandle : ReceiveActor
    {
        public GroupAbortHandle(EngineHolder holder)
        {
            Receive<AbortTrainerGroup>(m =>
            {
                // The handle keeps its path across trainer incarnations: act only for the generation this
                // incarnation joined (an earlier one's abort must not kill its successor).
                if (m.Generation != holder.Generation) return;
                Context.GetLogger().Warning("aborting the data-parallel group (generation {0}): {1}", m.Generation, m.Reason);
                holder.Engine?.AbortGroup(m.Reason);
                Context.Parent.Tell(new GroupAborted(m.Reason));
            });
        }
    }

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TrainerSettings _settings;
    private readonly TrainingEngineFactory _factory;
    private readonly IntakeChannel _intake;
    private readonly IActorRef _intakeActor;
    private readonly IActorRef _checkpointer;
    private readonly IActorRef _coordinator;
    private readonly List<IActorRef> _finalWaiters = [];

    private ITrainingEngine? _engine;
    private StartTraining? _start;
    private ConsumedLog _consumed = new();
    private long _plan = long.MaxValue;
    private bool _running, _paused, _finished, _stepScheduled, _finishAfterSave;
    private string? _checkpointRequested;
    private long _lastCheckpointStep = -1, _savingStep = -1, _discarded;
    private IReadOnlyDictionary<string, double> _losses = new Dictionary<string, double>();
    private readonly EngineHolder _holder = new();
    private JoinTrainerGroup? _group;   // the generation this trainer joined (null: training alone)
    private bool IsFollower => _group is { Rank: > 0 };
    private TrainingTracer? _tracer;   // step metrics, one span per log window, checkpoint snapshot spans

    // The current log window.
    private long _windowStart = Stopwatch.GetTimestamp();
    private DateTime _windowStartUtc = DateTime.UtcNow;
    private long _windowFirstStep;
    private long? _waitStart;
    private double _windowWait, _windowStepTime;
    private int _windowImages, _windowSteps;
    private double _imagesPerSecond, _stepSeconds, _waitFraction;

    public ITimerScheduler Timers { get; set; } = null!;

    public DeviceTrainer(TrainerSettings settings, TrainingEngineFactory factory, IntakeChannel intake, IActorRef intakeActor,
        IActorRef checkpointer, IActorRef coordinator)
    {
        (_settings, _factory, _intake, _intakeActor, _checkpointer, _coordinator) = (settings, factory, intake, intakeActor, checkpointer, coordinator);
        Receive<RegisterTick>(_ => _coordinator.Tell(new RegisterTrainer(Self, _intakeActor, _settings.Node, _engine?.Device ?? "pending")));
        Receive<StartTraining>(HandleStart);
        Receive<BeginSteps>(HandleBegin);
        Receive<TrainStep>(_ => DoStep());
        Receive<IntakeClosed>(_ => { _stepScheduled = false; _running = false; _log.Warning("the intake channel closed; training stops"); });
        Receive<PauseTraining>(_ => { _paused = true; ReportProgress(); });
        Receive<ResumeTraining>(_ => { _paused = false; ScheduleStep(); ReportProgress(); });
        Receive<SaveCheckpointNow>(m => { _checkpointRequested = m.Reason; if (!_stepScheduled || _paused) CheckpointNow(m.Reason, false); });
        Receive<StopTraining>(m => Finish(m.Reason));
        Receive<EpochClosed>(m => { if (IsCurrent(m.CoordinatorId)) _consumed.CloseThrough(m.Epoch); });
        Receive<CheckpointEvents.CheckpointSaved>(HandleSaved);
        Receive<CheckpointEvents.CheckpointFailed>(HandleCheckpointFailed);
        Receive<FinalCheckpoint>(_ => HandleFinalCheckpoint());
        Receive<ProgressTick>(_ => { if (!_running || _paused || _waitStart is not null) ReportProgress(); });
        Receive<CreateGroupAddresses>(HandleCreateAddresses);
        Receive<JoinTrainerGroup>(HandleJoin);
        Receive<FollowTick>(_ => Follow());
        // Sent to the trainer's own (incarnation-specific) ref as well, for a member that is not inside a collective.
        Receive<AbortTrainerGroup>(m => { if (IsCurrent(m.CoordinatorId)) throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"); });
        Receive<GroupAborted>(m => throw new GroupLostException($"the data-parallel group was aborted: {m.Reason}"));
    }

    // ---------------------------------------------------------------- data-parallel group

    private IDataParallelEngine GroupEngine =>
        _engine as IDataParallelEngine ?? throw new InvalidOperationException("this node's training engine cannot be a data-parallel rank.");

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

    public static Props Props(TrainerSettings settings, TrainingEngineFactory factory, IntakeChannel intake, IActorRef intakeActor,
        IActorRef checkpointer, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new DeviceTrainer(settings, factory, intake, intakeActor, checkpointer, coordinator));

    protected override void PreStart()
    {
        Context.ActorOf(Akka.Actor.Props.Create(() => new GroupAbortHandle(_holder)), AbortHandleName);
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

    private void HandleStart(StartTraining st)
    {
        if (_start is not null)
        {
            if (st.CoordinatorId != _start.CoordinatorId && _engine is not null)
            {
                // A new Coordinator (the old one's node left): it learns where these weights are.
                _log.Info("new coordinator {0}; continuing from step {1}", st.CoordinatorId, _engine.Step);
                _start = st with { ResumeFrom = null };
                _running = false;
                _coordinator.Tell(new TrainerReady(st.CoordinatorId, _engine.Step, _consumed.ToState()));
            }
            return;
        }
        Timers.Cancel("register");
        _start = st;
        _log.Info("initialising trainer for {0} (resume from {1})", st.RunDir, st.ResumeFrom ?? "nothing: fresh run");
        RestoredState restored;
        // Building the model and restoring a checkpoint is work a user waits on: a span under the run.
        using var startSpan = LiteVaeTelemetry.Default.Train.StartFrom("trainer start", ActivityKind.Internal, st.TraceParent,
            [new(TelemetryTags.Node, _settings.Node), new(TelemetryTags.Checkpoint, st.ResumeFrom)]);
        try
        {
            _engine = _factory();
            _holder.Engine = _engine as IDataParallelEngine;
            restored = _engine.Initialize(st.ExperimentHocon, st.RunDir, st.ResumeFrom);
            startSpan?.SetTag(TelemetryTags.Device, _engine.Device);
            startSpan?.SetTag(TelemetryTags.Step, restored.Step);
        }
        catch (Exception e)
        {
            startSpan.Fail(e);
            // A bad config, a checkpoint that does not fit or a missing libtorch fails the same way every
            // time: report it (the single-process `train` ends with this error) and offer this trainer again
            // later instead of crash-looping under the backoff supervisor.
            string reason = Innermost(e);
            _log.Error(e, "trainer could not start: {0}", reason);
            _engine?.Dispose();
            _engine = null;
            _holder.Engine = null;
            _start = null;
            Context.System.EventStream.Publish(new TrainerStartFailed(reason));
            Timers.StartPeriodicTimer("register", RegisterTick.Instance, _settings.RegisterInterval * 10, _settings.RegisterInterval * 10);
            return;
        }
        _consumed = restored.DataPosition is null
            ? new ConsumedLog()
            : ConsumedLog.FromState(DataPosition.Parse(restored.DataPosition, st.ResumeFrom ?? st.RunDir));
        if (st.ResumeFrom is not null) _lastCheckpointStep = restored.Step;
        _tracer = new TrainingTracer(LiteVaeTelemetry.Default, Path.GetFileName(st.RunDir.TrimEnd('/')), _settings.Node, _engine.Device, st.TraceParent);
        Context.System.EventStream.Publish(new TrainerRestored(restored.Step, st.ResumeFrom, _engine.Device, st.MaxSteps));
        _coordinator.Tell(new TrainerReady(st.CoordinatorId, restored.Step, _consumed.ToState()));
    }

    private void HandleBegin(BeginSteps b)
    {
        if (!IsCurrent(b.CoordinatorId) || _engine is null) return;
        _plan = b.PlanVersion;
        _running = true;
        ResetWindow();
        if (IsFollower)
        {
            _log.Info("rank {0} follows the leader from step {1}", _group!.Rank, _engine.Step);
            _stepScheduled = true;
            Self.Tell(FollowTick.Instance);
            return;
        }
        _log.Info("training from step {0} to {1} on plan {2}", _engine.Step, _start!.MaxSteps, _plan);
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
        if (!_intake.Reader.TryRead(out var batch))
        {
            _waitStart ??= Stopwatch.GetTimestamp();
            _stepScheduled = true;
            _intake.Reader.WaitToReadAsync().AsTask().PipeTo(Self,
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
        IReadOnlyDictionary<string, double>? losses;
        using (batch)
        {
            if (batch.PlanVersion < _plan)
            {
                _discarded++;
                ScheduleStep();
                return;
            }
            // A re-leased shard may arrive twice (the old reader's batches were still in flight): a sample is
            // trained once. The whole batch goes (its other samples stay unconsumed and are read again), so
            // every step keeps the configured batch size and every rank of a group the same slice.
            int repeats = _consumed.Repeats(batch.Samples);
            if (repeats > 0)
            {
                _consumed.Dropped(repeats);
                _coordinator.Tell(new SamplesDropped(_start!.CoordinatorId, batch.Samples.ToArray()));
                _discarded++;
                ScheduleStep();
                return;
            }
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
            var samples = batch.Samples.ToArray();
            _consumed.Add(samples);   // not a repeat (checked above)
            _coordinator.Tell(new SamplesConsumed(_start.CoordinatorId, _engine.Step, samples));
        }
        if (losses is not null)
        {
            _losses = new Dictionary<string, double>(losses);
            CloseWindow();
            ReportProgress();
        }
        long step = _engine.Step;
        if (_checkpointRequested is { } reason) CheckpointNow(reason, false);
        else if (step % _start.CheckpointEvery == 0) CheckpointNow("interval", true);
        if (step >= _start.MaxSteps) Finish("step budget reached");
        else ScheduleStep();
    }

    private void CheckpointNow(string reason, bool droppable)
    {
        _checkpointRequested = null;
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
        var span = _tracer?.StartSnapshot(_engine.Step, reason);
        long t0 = Stopwatch.GetTimestamp();
        ICheckpointSnapshot snapshot;
        try { snapshot = _engine.Snapshot(DataPosition.Format(_consumed.ToState())); }
        catch (Exception e)
        {
            span.Fail(e);
            span.EndHeld();
            throw;
        }
        LiteVaeTelemetry.Default.CheckpointDuration.Record(Stopwatch.GetElapsedTime(t0).TotalSeconds,
            new KeyValuePair<string, object?>(TelemetryTags.Phase, "snapshot"));
        string? parent = TraceContext.Inject(span);
        span.EndHeld();
        _checkpointer.Tell(new Checkpointer.Write(snapshot, _start.RunDir, reason, droppable, Self, parent));
    }

    private void Finish(string reason)
    {
        if (_engine is null || _start is null || IsFollower) return;   // followers end when the leader says so
        if (!_finished) _log.Info("finishing at step {0}: {1}", _engine.Step, reason);
        if (!_finished && _group is { Rank: 0 })
        {
            try { GroupEngine.EndGroup(); }
            catch (Exception e) { _log.Warning("telling the followers to stop failed: {0}", e.Message); }
        }
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
        _coordinator.Tell(new TrainingFinished(_start.CoordinatorId, _engine.Step, _lastCheckpointPath));
    }

    private string? _lastCheckpointPath;

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
            _tracer?.Window(_windowFirstStep, _engine.Step, _windowStartUtc, wall, _windowImages, _windowWait, _losses);
        ResetWindow();
    }

    private void ReportProgress()
    {
        if (_start is null || _engine is null || IsFollower) return;   // the leader reports for the group
        _coordinator.Tell(new TrainerProgress(_start.CoordinatorId, _settings.Node, _engine.Step, _imagesPerSecond, _stepSeconds,
            _waitFraction, _losses, _intake.Depth, _intake.Capacity, _discarded, _consumed.Duplicates, _paused));
    }
}
