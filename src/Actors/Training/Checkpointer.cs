using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Actors.Training;

/// <summary>
/// Writes checkpoints on a background task so training never waits for the disk. The trainer hands it a
/// CPU snapshot; it writes one at a time, keeps at most two interval snapshots waiting (the oldest is dropped
/// beyond that), never drops a requested or final one, and announces each <see cref="CheckpointEvents.CheckpointSaved"/>
/// to the trainer and the Coordinator.
/// </summary>
public sealed class Checkpointer : ReceiveActor
{
    /// <summary>Local only: the snapshot holds tensors/arrays. <paramref name="TraceParent"/>: the snapshot's span,
    /// parent of the write's.</summary>
    public sealed record Write(ICheckpointSnapshot Snapshot, string RunDir, string Reason, bool Droppable, IActorRef ReplyTo,
        string? TraceParent = null) : INoSerializationVerificationNeeded;

    private sealed record Written(Write Job, string Path, double Seconds) : INoSerializationVerificationNeeded;
    private sealed record WriteFailed(Write Job, Exception Error) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ICheckpointStore _store;
    private readonly IActorRef _coordinator;
    private readonly LinkedList<Write> _pending = new();
    private Write? _running;

    public Checkpointer(ICheckpointStore store, IActorRef coordinator)
    {
        (_store, _coordinator) = (store, coordinator);
        Receive<Write>(Enqueue);
        Receive<Written>(HandleWritten);
        Receive<WriteFailed>(HandleFailed);
    }

    public static Props Props(ICheckpointStore store, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new Checkpointer(store, coordinator));

    public int Pending => _pending.Count;

    private void Enqueue(Write w)
    {
        if (w.Droppable)
        {
            // Interval checkpoints wait at most two deep behind the one being written; beyond that the
            // oldest waiting one is dropped (the disk is slower than the interval; training never waits).
            var waiting = _pending.Where(p => p.Droppable).ToList();
            foreach (var old in waiting.Take(Math.Max(0, waiting.Count - 1)))
            {
                _log.Warning("checkpoint step {0} dropped: the disk is behind (step {1} waiting, {2} being written)",
                    old.Snapshot.Step, w.Snapshot.Step, _running?.Snapshot.Step);
                old.Snapshot.Dispose();
                _pending.Remove(old);
            }
        }
        _pending.AddLast(w);
        StartNext();
    }

    private void StartNext()
    {
        if (_running is not null || _pending.First is null) return;
        var job = _running = _pending.First.Value;
        _pending.RemoveFirst();
        var store = _store;
        var telemetry = LiteVaeTelemetry.Default;
        Task.Run(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            using var span = telemetry.Checkpoint.StartFrom("checkpoint write", System.Diagnostics.ActivityKind.Internal, job.TraceParent,
                [new(TelemetryTags.Step, job.Snapshot.Step), new(TelemetryTags.Reason, job.Reason)]);
            try
            {
                string path = store.Write(job.Snapshot, job.RunDir, job.Reason);
                span?.SetTag(TelemetryTags.Checkpoint, path);
                return (path, sw.Elapsed.TotalSeconds);
            }
            catch (Exception e)
            {
                span.Fail(e);
                throw;
            }
            finally
            {
                job.Snapshot.Dispose();
                telemetry.CheckpointDuration.Record(sw.Elapsed.TotalSeconds, new KeyValuePair<string, object?>(TelemetryTags.Phase, "write"));
            }
        }).PipeTo(Self, success: r => new Written(job, r.Item1, r.Item2), failure: e => new WriteFailed(job, e));
    }

    private void HandleWritten(Written w)
    {
        _running = null;
        var saved = new CheckpointEvents.CheckpointSaved(w.Job.Snapshot.Step, w.Path, w.Job.Reason, w.Seconds);
        _log.Info("checkpoint step {0} ({1}) written in {2:F2}s: {3}", saved.Step, saved.Reason, w.Seconds, w.Path);
        w.Job.ReplyTo.Tell(saved);
        _coordinator.Tell(saved);
        StartNext();
    }

    private void HandleFailed(WriteFailed f)
    {
        _running = null;
        var msg = f.Error.GetBaseException().Message;
        _log.Error(f.Error, "checkpoint step {0} failed: {1}", f.Job.Snapshot.Step, msg);
        var failed = new CheckpointEvents.CheckpointFailed(f.Job.Snapshot.Step, msg);
        f.Job.ReplyTo.Tell(failed);
        _coordinator.Tell(failed);
        StartNext();
    }

    protected override void PostStop()
    {
        foreach (var w in _pending) w.Snapshot.Dispose();
        _pending.Clear();
    }
}
