using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using static LiteVae.Actors.Protocol.TrainerProtocol;

namespace LiteVae.Actors.Training;

/// <summary>
/// The DeviceTrainer's checkpoints: a snapshot of weights, optimizer and data position copied to host memory on
/// the trainer's thread (the only part that stalls training), handed with the steps' training records to the
/// <see cref="Checkpointer"/>, which writes both on a background task; interval, requested, final and shutdown
/// checkpoints; how the run finishes.
/// </summary>
public sealed partial class DeviceTrainer
{
    private readonly List<IActorRef> _finalWaiters = [];
    private string? _checkpointRequested;
    private long _lastCheckpointStep = -1, _savingStep = -1;
    private string? _lastCheckpointPath;
    private bool _finishAfterSave;
    private string? _failure;   // why the run stops on an error (reported with TrainingFinished)

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
}
