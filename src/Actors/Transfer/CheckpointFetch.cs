using Akka.Actor;
using Akka.Event;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.TransferProtocol;

namespace LiteVae.Actors.Transfer;

/// <summary>What to fetch and where to. <paramref name="Holders"/>: checkpoint servers that have it, tried in order.
/// <paramref name="Tag"/> comes back with the result (the requester's own bookkeeping).</summary>
public sealed record FetchRequest(string Checkpoint, IReadOnlyList<IActorRef> Holders, string LocalCheckpointsDir, bool MayUseInPlace,
    RetentionPolicy Retention, StorageSettings Settings, object? Tag = null);

/// <summary>The checkpoint is complete on this node at <paramref name="Path"/>; <paramref name="Bytes"/> were copied (0: used
/// in place or already here).</summary>
public sealed record Fetched(FetchRequest Request, string Path, long Bytes, double Seconds) : INoSerializationVerificationNeeded;

public sealed record FetchFailed(FetchRequest Request, string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Copies one checkpoint from another node's <see cref="CheckpointServer"/> onto this node's disk, then tells its
/// parent <see cref="Fetched"/> or <see cref="FetchFailed"/> and stops. The manifest comes first: a checkpoint already
/// here with the same bytes (the sender's path on a shared disk, or an earlier copy) is not copied again. Otherwise
/// one chunk is asked for at a time into a <see cref="CheckpointDownload"/>; a request unanswered in
/// <see cref="StorageSettings.RequestTimeout"/>, a refusal or a lost holder costs one attempt and the next one continues
/// from the bytes already on disk (the next holder once this one used its <see cref="StorageSettings.Attempts"/>). A file
/// whose SHA-256 differs is deleted and fetched again. Disk work runs off the mailbox.
/// </summary>
public sealed class CheckpointFetch : ReceiveActor, IWithTimers
{
    private sealed record Timeout(int Request) : INoSerializationVerificationNeeded;
    private sealed record Written(int Request) : INoSerializationVerificationNeeded;
    private sealed record DiskFailed(int Request, string Reason, bool Retry) : INoSerializationVerificationNeeded;
    private sealed record Done(string Path) : INoSerializationVerificationNeeded;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly FetchRequest _r;
    private readonly string _session = Guid.NewGuid().ToString("N")[..16];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private int _holder, _attempts, _request;
    private CheckpointDownload? _download;
    private (string File, long Offset)? _waiting;
    private long _copied;
    private string _lastProblem = "no answer yet";

    public ITimerScheduler Timers { get; set; } = null!;

    public CheckpointFetch(FetchRequest request)
    {
        _r = request;
        Receive<Manifest>(HandleManifest);
        Receive<Chunk>(HandleChunk);
        Receive<Written>(w => { if (w.Request == _request) Next(); });
        Receive<DiskFailed>(f => { if (f.Request == _request) Problem(f.Reason, f.Retry); });
        Receive<Done>(d => Finish(new Fetched(_r, d.Path, _copied, _clock.Elapsed.TotalSeconds)));
        Receive<Refused>(r => Problem($"{Holder.Path.Address} refused: {r.Reason}", retry: true));
        Receive<Timeout>(t => { if (t.Request == _request) Problem($"{Holder.Path.Address} did not answer in {_r.Settings.RequestTimeout.TotalSeconds:F0} s", retry: true); });
        Receive<Terminated>(t => { if (t.ActorRef.Equals(Holder)) Problem($"{Holder.Path.Address} is gone", retry: true); });
    }

    public static Props Props(FetchRequest request) => Akka.Actor.Props.Create(() => new CheckpointFetch(request));

    private IActorRef Holder => _r.Holders[_holder];

    protected override void PreStart()
    {
        if (_r.Holders.Count == 0)
        {
            Finish(new FetchFailed(_r, $"{_r.Checkpoint}: no node to fetch it from"));
            return;
        }
        Ask(new GetManifest(_r.Checkpoint, _session));
    }

    private void Ask(object message)
    {
        _request++;
        Context.Watch(Holder);
        Holder.Tell(message);
        Timers.StartSingleTimer("timeout", new Timeout(_request), _r.Settings.RequestTimeout);
    }

    private void HandleManifest(Manifest m)
    {
        if (_download is not null) return;   // a repeated answer
        Timers.Cancel("timeout");
        var request = ++_request;
        var self = Self;
        var r = _r;
        // Hashing a local candidate reads it whole: off the mailbox.
        Task.Run(() =>
        {
            if (r.MayUseInPlace && CheckpointManifest.Matches(m.Checkpoint, m.Files)) return (object)new Done(m.Checkpoint);
            string local = Path.Combine(r.LocalCheckpointsDir, CheckpointStore.StepDirName(m.Step));
            if (Path.GetFullPath(local) != Path.GetFullPath(m.Checkpoint) && CheckpointManifest.Matches(local, m.Files)) return new Done(local);
            return CheckpointDownload.Begin(r.LocalCheckpointsDir, m.Step, m.Files);
        }).PipeTo(self, success: o => o switch
        {
            Done d => d,
            CheckpointDownload d => new Began(request, d),
            _ => new DiskFailed(request, "unexpected", false),
        }, failure: e => new DiskFailed(request, $"{r.LocalCheckpointsDir}: {e.GetBaseException().Message}", false));
        BecomeStacked(() =>
        {
            Receive<Began>(b =>
            {
                if (b.Request != _request) return;
                _download = b.Download;
                UnbecomeStacked();
                Next();
            });
            Receive<Done>(d => Finish(new Fetched(_r, d.Path, 0, _clock.Elapsed.TotalSeconds)));
            Receive<DiskFailed>(f => { if (f.Request == _request) Finish(new FetchFailed(_r, f.Reason)); });
            ReceiveAny(_ => { });   // late answers of the manifest request
        });
    }

    private sealed record Began(int Request, CheckpointDownload Download) : INoSerializationVerificationNeeded;

    /// <summary>Asks for the next chunk, or finishes when every byte is here.</summary>
    private void Next()
    {
        var d = _download!;
        if (d.NextIncomplete() is { } file)
        {
            long have = d.Have(file.Name);
            _waiting = (file.Name, have);
            Ask(new GetChunk(_r.Checkpoint, file.Name, have, (int)Math.Min(_r.Settings.ChunkBytes, file.Size - have), _session));
            return;
        }
        _waiting = null;
        Timers.Cancel("timeout");
        int request = ++_request;
        var retention = _r.Retention;
        Task.Run(() => d.Finish(retention)).PipeTo(Self, success: path => (object)new Done(path),
            failure: e => new DiskFailed(request, e.GetBaseException().Message, e.GetBaseException() is InvalidDataException));
    }

    private void HandleChunk(Chunk c)
    {
        if (_download is null || _waiting is not { } w || c.File != w.File || c.Offset != w.Offset) return;   // late or repeated
        Timers.Cancel("timeout");
        _waiting = null;
        if (c.Data.Length == 0)
        {
            Problem($"{Holder.Path.Address} sent an empty chunk of {c.File} at byte {c.Offset}", retry: true);
            return;
        }
        int request = ++_request;
        var d = _download;
        _copied += c.Data.Length;
        Task.Run(() => d.Append(c.File, c.Offset, c.Data)).PipeTo(Self, success: () => new Written(request),
            failure: e => new DiskFailed(request, $"{d.Folder}: {e.GetBaseException().Message}", false));
    }

    /// <summary>One attempt failed: try again from the bytes on disk (next holder after <see cref="StorageSettings.Attempts"/>).</summary>
    private void Problem(string what, bool retry)
    {
        _lastProblem = what;
        Timers.Cancel("timeout");
        if (!retry)
        {
            Finish(new FetchFailed(_r, what));
            return;
        }
        _log.Warning("fetching {0}: {1}; trying again from the bytes already here", _r.Checkpoint, what);
        if (++_attempts >= _r.Settings.Attempts)
        {
            Holder.Tell(new Release(_r.Checkpoint, _session));
            Context.Unwatch(Holder);
            _attempts = 0;
            if (++_holder >= _r.Holders.Count)
            {
                _holder = _r.Holders.Count - 1;
                Finish(new FetchFailed(_r, $"{_r.Checkpoint}: gave up after {_r.Settings.Attempts} attempt(s) per node on {_r.Holders.Count} node(s): {_lastProblem}"));
                return;
            }
        }
        if (_download is null) Ask(new GetManifest(_r.Checkpoint, _session));
        else
        {
            // The new holder (or the same one again) must know the manifest before it serves chunks (it also pins).
            Ask(new GetManifest(_r.Checkpoint, _session));
            BecomeStacked(() =>
            {
                Receive<Manifest>(m =>
                {
                    UnbecomeStacked();
                    if (CheckpointManifest.Fingerprint(m.Files) != CheckpointManifest.Fingerprint(_download.Files))
                    {
                        Finish(new FetchFailed(_r, $"{_r.Checkpoint}: {Holder.Path.Address} holds another checkpoint under this name now (saved again?)"));
                        return;
                    }
                    Timers.Cancel("timeout");
                    Next();
                });
                Receive<Refused>(r => { UnbecomeStacked(); Problem($"{Holder.Path.Address} refused: {r.Reason}", retry: true); });
                Receive<Timeout>(t => { if (t.Request == _request) { UnbecomeStacked(); Problem($"{Holder.Path.Address} did not answer in {_r.Settings.RequestTimeout.TotalSeconds:F0} s", retry: true); } });
                Receive<Terminated>(t => { if (t.ActorRef.Equals(Holder)) { UnbecomeStacked(); Problem($"{Holder.Path.Address} is gone", retry: true); } });
                ReceiveAny(_ => { });
            });
        }
    }

    private bool _finished;

    private void Finish(object result)
    {
        if (_finished) return;
        _finished = true;
        Timers.CancelAll();
        if (_r.Holders.Count > 0) Holder.Tell(new Release(_r.Checkpoint, _session));
        if (result is FetchFailed && _download is { } partial)
        {
            // Every attempt on every holder is spent: nobody continues this copy, so its bytes go (a fetch of the same
            // checkpoint that is cut off by this process dying instead continues from them: CheckpointDownload.Begin).
            try { partial.Abandon(); }
            catch (IOException e) { _log.Warning("{0}: could not remove the partial copy: {1}", partial.Folder, e.Message); }
        }
        if (result is Fetched f && f.Bytes > 0)
            _log.Info("fetched {0} from {1}: {2:F1} MiB in {3:F1} s into {4}", _r.Checkpoint, Holder.Path.Address, f.Bytes / 1048576.0, f.Seconds, f.Path);
        Context.Parent.Tell(result);
        Context.Stop(Self);
    }
}
