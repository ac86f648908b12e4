using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Audit;

namespace LiteVae.Actors.Training;

/// <summary>
/// Writes checkpoints on a background task so training never waits for the disk. The trainer hands it a
/// CPU snapshot with the training records of the steps since the previous one; it appends the records to the
/// run's training log (<see cref="TrainingLog"/>) and then writes the checkpoint, so every step a checkpoint
/// holds is on record. One job at a time, in order; at most two interval snapshots wait (beyond that the
/// oldest is dropped, its records going with the next), a requested or final one is never dropped. Each
/// <see cref="CheckpointEvents.CheckpointSaved"/> goes to the trainer and the Coordinator.
/// </summary>
public sealed class Checkpointer : ReceiveActor
{
    /// <summary>Local only: the snapshot holds tensors/arrays. <paramref name="TraceParent"/>: the snapshot's span,
    /// parent of the write's.</summary>
    public sealed record Write(ICheckpointSnapshot Snapshot, string RunDir, string Reason, bool Droppable, IActorRef ReplyTo,
        IReadOnlyList<StepRecord> Records, Func<int, string> ShardName, string? TraceParent = null) : INoSerializationVerificationNeeded;

    /// <summary>Local: a trainer resumed from the checkpoint of <paramref name="Step"/> (later records on file are void).</summary>
    public sealed record MarkResume(string RunDir, long Step) : INoSerializationVerificationNeeded;

    private sealed record Written(Write Job, string Path, double Seconds) : INoSerializationVerificationNeeded;
    private sealed record WriteFailed(Write Job, Exception Error, bool RecordsOnFile) : INoSerializationVerificationNeeded;
    private sealed record Marked : INoSerializationVerificationNeeded;

    /// <summary>Local (a leaving node's shutdown): answers with <see cref="CheckpointEvents.CheckpointStored"/> once the run's
    /// directory holds the checkpoint of <paramref name="Step"/> (or a later one), or could not store it.</summary>
    public sealed record AwaitStored(long Step) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ICheckpointStore _store;
    private readonly IActorRef _coordinator;
    private readonly IActorRef? _server;   // this node's checkpoint server: the run's home copies what we write from it
    private readonly LinkedList<object> _pending = new();   // Write or MarkResume, in arrival order
    private object? _running;
    private IReadOnlyList<StepRecord> _unwritten = [];   // records of a failed write that never reached the training log

    public Checkpointer(ICheckpointStore store, IActorRef coordinator, IActorRef? server = null)
    {
        (_store, _coordinator, _server) = (store, coordinator, server);
        Receive<Write>(Enqueue);
        Receive<MarkResume>(m => { _pending.AddLast(m); StartNext(); });
        Receive<Written>(HandleWritten);
        Receive<WriteFailed>(HandleFailed);
        Receive<Marked>(_ => { _running = null; StartNext(); });
        Receive<CheckpointEvents.CheckpointStored>(HandleStored);
        Receive<AwaitStored>(a =>
        {
            if (_server is null || _stored?.Step >= a.Step) Sender.Tell(_stored ?? new CheckpointEvents.CheckpointStored(a.Step, null));
            else _storedWaiters.Add((a.Step, Sender));
        });
    }

    public static Props Props(ICheckpointStore store, IActorRef coordinator, IActorRef? server = null) =>
        Akka.Actor.Props.Create(() => new Checkpointer(store, coordinator, server));


    private void Enqueue(Write w)
    {
        if (w.Droppable)
        {
            // Interval checkpoints wait at most two deep behind the one being written; beyond that the
            // oldest waiting one is dropped (the disk is slower than the interval; training never waits).
            var waiting = _pending.OfType<Write>().Where(p => p.Droppable).ToList();
            var dropped = waiting.Take(Math.Max(0, waiting.Count - 1)).ToList();
            foreach (var old in dropped)
            {
                _log.Warning("checkpoint step {0} dropped: the disk is behind (step {1} waiting, {2} being written)",
                    old.Snapshot.Step, w.Snapshot.Step, (_running as Write)?.Snapshot.Step);
                old.Snapshot.Dispose();
                _pending.Remove(old);
            }
            // The dropped snapshots' records still go on file, ahead of this one's.
            if (dropped.Count > 0) w = w with { Records = [.. dropped.SelectMany(d => d.Records), .. w.Records] };
        }
        _pending.AddLast(w);
        StartNext();
    }

    private void StartNext()
    {
        if (_running is not null || _pending.First is null) return;
        var next = _running = _pending.First.Value;
        _pending.RemoveFirst();
        if (next is MarkResume mark)
        {
            Task.Run(() => TrainingLog.MarkResume(mark.RunDir, mark.Step)).PipeTo(Self, success: () => new Marked(), failure: e =>
            {
                _log.Error(e, "marking the resume at step {0} in the training log failed", mark.Step);
                return new Marked();
            });
            return;
        }
        var job = (Write)next;
        if (_unwritten.Count > 0)
        {
            // Those steps were trained (their effect is in this snapshot's weights): their records go first.
            job = job with { Records = [.. _unwritten, .. job.Records] };
            _unwritten = [];
        }
        var onFile = new StrongBox<bool>();
        var store = _store;
        var telemetry = LiteVaeTelemetry.Default;
        Task.Run(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            using var span = telemetry.Checkpoint.StartFrom("checkpoint write", System.Diagnostics.ActivityKind.Internal, job.TraceParent,
                [new(TelemetryTags.Step, job.Snapshot.Step), new(TelemetryTags.Reason, job.Reason)]);
            try
            {
                TrainingLog.Append(job.RunDir, job.Records, job.ShardName);
                onFile.Value = true;
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
        }).PipeTo(Self, success: r => new Written(job, r.Item1, r.Item2), failure: e => new WriteFailed(job, e, onFile.Value));
    }

    private void HandleWritten(Written w)
    {
        _running = null;
        var saved = new CheckpointEvents.CheckpointSaved(w.Job.Snapshot.Step, w.Path, w.Job.Reason, w.Seconds, _server);
        _log.Info("checkpoint step {0} ({1}) written in {2:F2}s: {3}", saved.Step, saved.Reason, w.Seconds, w.Path);
        w.Job.ReplyTo.Tell(saved);
        _coordinator.Tell(saved);
        StartNext();
    }

    private CheckpointEvents.CheckpointStored? _stored;
    private readonly List<(long Step, IActorRef Client)> _storedWaiters = [];

    private void HandleStored(CheckpointEvents.CheckpointStored s)
    {
        if (s.Error is not null)
            _log.Error("checkpoint step {0} is only on this node: the run's directory could not store it: {1}", s.Step, s.Error);
        if (s.Error is null && (_stored is null || s.Step >= _stored.Step)) _stored = s;
        for (int i = _storedWaiters.Count - 1; i >= 0; i--)
        {
            if (_storedWaiters[i].Step > s.Step) continue;
            _storedWaiters[i].Client.Tell(s);
            _storedWaiters.RemoveAt(i);
        }
    }

    private void HandleFailed(WriteFailed f)
    {
        _running = null;
        var msg = f.Error.GetBaseException().Message;
        _log.Error(f.Error, "checkpoint step {0} failed: {1}", f.Job.Snapshot.Step, msg);
        if (!f.RecordsOnFile) _unwritten = f.Job.Records;   // a full disk: keep them for the next write
        var failed = new CheckpointEvents.CheckpointFailed(f.Job.Snapshot.Step, msg);
        f.Job.ReplyTo.Tell(failed);
        _coordinator.Tell(failed);
        StartNext();
    }

    protected override void PostStop()
    {
        foreach (var w in _pending.OfType<Write>()) w.Snapshot.Dispose();
        _pending.Clear();
    }
}
