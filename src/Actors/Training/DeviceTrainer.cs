using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Data;
using LiteVae.Actors.Ledger;
using LiteVae.Actors.Protocol;
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
    public sealed record TrainerRestored(long Step, string? Checkpoint, string Device) : INoSerializationVerificationNeeded;

    private sealed class RegisterTick : INoSerializationVerificationNeeded { public static readonly RegisterTick Instance = new(); }
    private sealed class ProgressTick : INoSerializationVerificationNeeded { public static readonly ProgressTick Instance = new(); }
    private sealed class IntakeClosed : INoSerializationVerificationNeeded { public static readonly IntakeClosed Instance = new(); }

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

    // The current log window.
    private long _windowStart = Stopwatch.GetTimestamp();
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
    }

    public static Props Props(TrainerSettings settings, TrainingEngineFactory factory, IntakeChannel intake, IActorRef intakeActor,
        IActorRef checkpointer, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new DeviceTrainer(settings, factory, intake, intakeActor, checkpointer, coordinator));

    protected override void PreStart()
    {
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
        try
        {
            _engine = _factory();
            restored = _engine.Initialize(st.ExperimentHocon, st.RunDir, st.ResumeFrom);
        }
        catch (Exception e)
        {
            // A bad config, a checkpoint that does not fit or a missing libtorch fails the same way every
            // time: report it (the single-process `train` ends with this error) and offer this trainer again
            // later instead of crash-looping under the backoff supervisor.
            string reason = Innermost(e);
            _log.Error(e, "trainer could not start: {0}", reason);
            _engine?.Dispose();
            _engine = null;
            _start = null;
            Context.System.EventStream.Publish(new TrainerStartFailed(reason));
            Timers.StartPeriodicTimer("register", RegisterTick.Instance, _settings.RegisterInterval * 10, _settings.RegisterInterval * 10);
            return;
        }
        _consumed = restored.DataPosition is null
            ? new ConsumedLog()
            : ConsumedLog.FromState(DataPosition.Parse(restored.DataPosition, st.ResumeFrom ?? st.RunDir));
        if (st.ResumeFrom is not null) _lastCheckpointStep = restored.Step;
        Context.System.EventStream.Publish(new TrainerRestored(restored.Step, st.ResumeFrom, _engine.Device));
        _coordinator.Tell(new TrainerReady(st.CoordinatorId, restored.Step, _consumed.ToState()));
    }

    private void HandleBegin(BeginSteps b)
    {
        if (!IsCurrent(b.CoordinatorId) || _engine is null) return;
        _plan = b.PlanVersion;
        _running = true;
        ResetWindow();
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
        if (_waitStart is long ws)
        {
            _windowWait += Stopwatch.GetElapsedTime(ws).TotalSeconds;
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
            bool logNow = (_engine.Step + 1) % _start!.LogEvery == 0;
            long t0 = Stopwatch.GetTimestamp();
            losses = _engine.TrainStep(batch, logNow);
            _windowStepTime += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            _windowImages += batch.Count;
            _windowSteps++;
            var samples = batch.Samples.ToArray();
            _consumed.Add(samples);
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
        if (_engine is null || _start is null) return;
        if (_engine.Step == _lastCheckpointStep || _engine.Step == _savingStep)
        {
            // Already on disk (or being written): tell whoever asked.
            if (_engine.Step == _lastCheckpointStep && !droppable)
                _coordinator.Tell(new CheckpointEvents.CheckpointSaved(_engine.Step, _lastCheckpointPath ?? "", reason, 0));
            return;
        }
        _savingStep = _engine.Step;
        var snapshot = _engine.Snapshot(DataPosition.Format(_consumed.ToState()));
        _checkpointer.Tell(new Checkpointer.Write(snapshot, _start.RunDir, reason, droppable, Self));
    }

    private void Finish(string reason)
    {
        if (_engine is null || _start is null) return;
        if (!_finished) _log.Info("finishing at step {0}: {1}", _engine.Step, reason);
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
        if (_engine is null || _start is null || _engine.Step == 0)
        {
            Sender.Tell(new FinalCheckpointSkipped("nothing trained yet"));
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
        ResetWindow();
    }

    private void ReportProgress()
    {
        if (_start is null || _engine is null) return;
        _coordinator.Tell(new TrainerProgress(_start.CoordinatorId, _settings.Node, _engine.Step, _imagesPerSecond, _stepSeconds,
            _waitFraction, _losses, _intake.Depth, _intake.Capacity, _discarded, _consumed.Duplicates, _paused));
    }
}
