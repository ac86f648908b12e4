using Akka.Actor;
using Akka.Event;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.TransferProtocol;

namespace LiteVae.Actors.Transfer;

/// <summary>
/// Serves this node's checkpoints to other nodes, one chunk per request (every node runs one: the run's home serves
/// eval nodes and replacement trainers, a trainer node serves the checkpoints it wrote to the home). It serves only the
/// files a complete <c>checkpoints/step-N</c> directory lists in its trainer state, never another path. From the
/// manifest to the release (or <see cref="IdleAfter"/> without a request) the checkpoint is pinned, so retention on
/// this node cannot delete it mid-transfer. Hashing and reading run off the mailbox.
/// </summary>
public sealed class CheckpointServer : ReceiveActor, IWithTimers
{
    public const string Name = "checkpoint-server";
    public static readonly TimeSpan IdleAfter = TimeSpan.FromMinutes(2);

    private sealed record Session(string Checkpoint, IDisposable? Pin, DateTime LastUsed);
    private sealed record Hashed(string Checkpoint, long Step, IReadOnlyList<FileDigest> Files, DateTime StateTime) : INoSerializationVerificationNeeded;
    private sealed class Sweep : INoSerializationVerificationNeeded { public static readonly Sweep Instance = new(); }

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int _maxChunk;
    private readonly Dictionary<string, Session> _sessions = new();
    private readonly Dictionary<string, Hashed> _manifests = new();   // by step directory, while its trainer state is unchanged

    public ITimerScheduler Timers { get; set; } = null!;

    public CheckpointServer(int maxChunkBytes)
    {
        _maxChunk = maxChunkBytes;
        Receive<GetManifest>(HandleManifest);
        Receive<Hashed>(h => _manifests[h.Checkpoint] = h);
        Receive<GetChunk>(HandleChunk);
        Receive<Release>(r => End(r.Session));
        Receive<Sweep>(_ =>
        {
            foreach (var (id, s) in _sessions.Where(kv => DateTime.UtcNow - kv.Value.LastUsed > IdleAfter).ToList())
            {
                _log.Warning("checkpoint transfer {0} of {1} idle for {2}: its pin is released", id, s.Checkpoint, IdleAfter);
                End(id);
            }
        });
    }

    public static Props Props(int maxChunkBytes) => Akka.Actor.Props.Create(() => new CheckpointServer(maxChunkBytes));

    protected override void PreStart() => Timers.StartPeriodicTimer("sweep", Sweep.Instance, TimeSpan.FromSeconds(30));

    protected override void PostStop()
    {
        foreach (var s in _sessions.Values) s.Pin?.Dispose();
        _sessions.Clear();
    }

    /// <summary>The step directory a request names, when it is one this server may serve; else why not.</summary>
    private static string? StepDir(string checkpoint, out string? why)
    {
        why = null;
        string full = Path.GetFullPath(checkpoint);
        var dir = new DirectoryInfo(full);
        string? resolved = dir.Exists ? (dir.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dir.FullName) : null;
        if (resolved is null || RunDirectory.StepOf(resolved) is null || Path.GetFileName(Path.GetDirectoryName(resolved)) != "checkpoints")
            why = $"{checkpoint}: not a checkpoints/step-N directory on this node";
        else if (!File.Exists(Path.Combine(resolved, CheckpointStore.StateFile)))
            why = $"{checkpoint}: no complete checkpoint there (retention removed it, or it was never complete)";
        return why is null ? resolved : null;
    }

    private void HandleManifest(GetManifest m)
    {
        var sender = Sender;
        if (StepDir(m.Checkpoint, out var why) is not { } dir)
        {
            sender.Tell(new Refused(m.Checkpoint, why!));
            return;
        }
        if (!_sessions.ContainsKey(m.Session))
        {
            IDisposable? pin;
            try { pin = PinHandle.Take(dir, m.Session); }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                sender.Tell(new Refused(m.Checkpoint, $"{m.Checkpoint}: {e.Message}"));
                return;
            }
            _sessions[m.Session] = new Session(m.Checkpoint, pin, DateTime.UtcNow);
        }
        var stateTime = File.GetLastWriteTimeUtc(Path.Combine(dir, CheckpointStore.StateFile));
        if (_manifests.TryGetValue(dir, out var cached) && cached.StateTime == stateTime)
        {
            sender.Tell(new Manifest(m.Checkpoint, cached.Step, cached.Files));
            return;
        }
        var self = Self;
        Task.Run(() =>
        {
            var files = CheckpointManifest.Of(dir);
            long step = RunDirectory.StepOf(dir) ?? -1;
            self.Tell(new Hashed(dir, step, files, stateTime));
            return new Manifest(m.Checkpoint, step, files);
        }).PipeTo(sender, self, failure: e => new Refused(m.Checkpoint, $"{m.Checkpoint}: {e.GetBaseException().Message}"));
    }

    private void HandleChunk(GetChunk c)
    {
        var sender = Sender;
        if (StepDir(c.Checkpoint, out var why) is not { } dir)
        {
            sender.Tell(new Refused(c.Checkpoint, why!));
            return;
        }
        if (_sessions.TryGetValue(c.Session, out var s)) _sessions[c.Session] = s with { LastUsed = DateTime.UtcNow };
        // Only a file the manifest lists (the receiver had it first): never an arbitrary path.
        if (!_manifests.TryGetValue(dir, out var manifest) || manifest.Files.FirstOrDefault(f => f.Name == c.File) is not { } digest)
        {
            sender.Tell(new Refused(c.Checkpoint, $"{c.Checkpoint}: '{c.File}' is not a file of this checkpoint's manifest (ask for the manifest first)"));
            return;
        }
        int length = (int)Math.Clamp(Math.Min(c.Length, digest.Size - c.Offset), 0, _maxChunk);
        string path = Path.Combine(dir, c.File);
        var self = Self;
        Task.Run(() =>
        {
            var data = new byte[length];
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, data.AsSpan(read), c.Offset + read);
                if (n == 0) throw new IOException($"{path}: ends at byte {c.Offset + read}, before the {digest.Size} its manifest says");
                read += n;
            }
            return new Chunk(c.Checkpoint, c.File, c.Offset, data);
        }).PipeTo(sender, self, failure: e => new Refused(c.Checkpoint, $"{path}: {e.GetBaseException().Message}"));
    }

    private void End(string session)
    {
        if (_sessions.Remove(session, out var s)) s.Pin?.Dispose();
    }

    /// <summary>The pin that keeps a step directory from retention while it is served.</summary>
    private sealed class PinHandle(string path) : IDisposable
    {
        public static PinHandle Take(string stepDir, string session)
        {
            string checkpoints = Path.GetDirectoryName(stepDir)!;
            return new PinHandle(CheckpointStore.Pin(checkpoints, stepDir, "transfer-" + session));
        }

        public void Dispose() => CheckpointStore.Unpin(path);
    }
}
