using Akka.Actor;
using Akka.Configuration;
using LiteVae.Actors.Serialization;
using LiteVae.Actors.Transfer;
using LiteVae.Model.Checkpoints;
using static LiteVae.Actors.Protocol.TransferProtocol;

namespace LiteVae.Actors.Tests.Transfer;

/// <summary>
/// A checkpoint copied between nodes by the real <see cref="CheckpointServer"/> and <see cref="CheckpointFetch"/>, every
/// message through the LiteVae serializer (serialize-messages on): in chunks, one at a time; resumed from the bytes
/// already received when the holder is lost mid-copy; a damaged copy never becomes a checkpoint; while it is copied, no
/// step directory is visible on the receiver and the sender's copy is pinned against retention.
/// </summary>
public sealed class CheckpointTransferTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"litevae-transfer-{Guid.NewGuid():N}");
    private string Sender => Path.Combine(_root, "sender", "checkpoints");
    private string Receiver => Path.Combine(_root, "receiver", "checkpoints");

    public CheckpointTransferTests()
        : base(ConfigurationFactory.ParseString("akka.actor.serialize-messages = on\n" + SerializationSetup.Hocon), "litevae") { }

    private static StorageSettings Settings(int attempts = 2, double timeoutS = 5) =>
        new(SharedRunDir.No, "runs", "", ChunkBytes, TimeSpan.FromSeconds(timeoutS), attempts);

    /// <summary>Between the fetch and the server: counts (and can break or damage) what passes.</summary>
    private sealed class Relay : ReceiveActor
    {
        public readonly record struct Seen(string File, long Offset);

        public Relay(IActorRef server, List<Seen> seen, int stopAfterChunks, bool corrupt, TaskCompletionSource? pausedAt = null)
        {
            ReceiveAny(m =>
            {
                if (m is GetChunk g)
                {
                    lock (seen) seen.Add(new Seen(g.File, g.Offset));
                    if (seen.Count > stopAfterChunks)
                    {
                        // The peer is lost mid-transfer: the request is never answered and the holder is gone.
                        pausedAt?.TrySetResult();
                        Context.Stop(Self);
                        return;
                    }
                    _replyTo = Sender;
                    server.Tell(g, Self);
                    return;
                }
                if (m is Chunk c && corrupt && c.File == "model.safetensors" && c.Data.Length > 100)
                {
                    var bad = c.Data.ToArray();
                    bad[^1] ^= 0xFF;
                    _replyTo!.Tell(c with { Data = bad });
                    return;
                }
                if (m is GetManifest or Release)
                {
                    _replyTo = Sender;
                    server.Tell(m, Self);
                }
                else _replyTo!.Tell(m);   // the server's answers
            });
        }

        private IActorRef? _replyTo;
    }

    /// <summary>The fetch reports to its parent: this one hands the result to the test.</summary>
    private sealed class Parent : ReceiveActor
    {
        public Parent(FetchRequest request, IActorRef test)
        {
            Context.ActorOf(CheckpointFetch.Props(request));
            ReceiveAny(m => test.Tell(m));
        }
    }

    private object Fetch(string checkpoint, IReadOnlyList<IActorRef> holders, bool inPlace = false, StorageSettings? settings = null)
    {
        var request = new FetchRequest(checkpoint, holders, Receiver, inPlace, new RetentionPolicy(3), settings ?? Settings());
        Sys.ActorOf(Props.Create(() => new Parent(request, TestActor)));
        return ExpectMsg<object>(TimeSpan.FromSeconds(60));
    }

    private IActorRef Server() => Sys.ActorOf(CheckpointServer.Props(ChunkBytes));

    [Fact]
    public void A_checkpoint_is_copied_in_chunks_verified_and_renamed_into_place_and_the_senders_pin_is_released()
    {
        string source = TestCheckpoint.Write(Sender, 8, floats: 100_000);   // ~400 KB: seven chunks of 64 KiB
        var seen = new List<Relay.Seen>();
        var relay = Sys.ActorOf(Props.Create(() => new Relay(Server(), seen, int.MaxValue, false, null)));

        var fetched = Assert.IsType<Fetched>(Fetch(source, [relay]));

        Assert.Equal(Path.Combine(Receiver, "step-00000008"), fetched.Path);
        Assert.Equal(CheckpointManifest.Of(source), CheckpointManifest.Of(fetched.Path));
        long model = new FileInfo(Path.Combine(source, "model.safetensors")).Length;
        Assert.Equal((int)((model + ChunkBytes - 1) / ChunkBytes), seen.Count(s => s.File == "model.safetensors"));   // one request per 64 KiB
        Assert.Equal(model + SmallFiles(source), fetched.Bytes);
        Assert.Equal([(8L, fetched.Path)], CheckpointStore.List(Receiver));
        Assert.Equal("step-00000008", new FileInfo(Path.Combine(Receiver, "last")).LinkTarget);
        Assert.Empty(Directory.EnumerateDirectories(Receiver, ".part-*"));
        AwaitCondition(() => CheckpointStore.Pinned(Sender).Count == 0, TimeSpan.FromSeconds(10));
    }

    private static long SmallFiles(string dir) =>
        new[] { CheckpointStore.StateFile, CheckpointStore.ConfigFile }.Sum(f => new FileInfo(Path.Combine(dir, f)).Length);

    [Fact]
    public async Task A_copy_broken_by_a_lost_holder_resumes_from_the_bytes_already_received_at_the_next_holder()
    {
        string source = TestCheckpoint.Write(Sender, 12, floats: 100_000);
        var server = Server();
        var first = new List<Relay.Seen>();
        var lost = new TaskCompletionSource();
        var broken = Sys.ActorOf(Props.Create(() => new Relay(server, first, 3, false, lost)));
        var second = new List<Relay.Seen>();
        var healthy = Sys.ActorOf(Props.Create(() => new Relay(server, second, int.MaxValue, false, null)));

        var request = new FetchRequest(source, [broken, healthy], Receiver, false, new RetentionPolicy(3), Settings(attempts: 1));
        Sys.ActorOf(Props.Create(() => new Parent(request, TestActor)));
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(30));   // the first holder is lost at its fourth chunk request
        // Mid-copy: the received bytes sit in the partial folder; no checkpoint is visible yet; the sender's copy is pinned.
        Assert.Empty(CheckpointStore.List(Receiver));
        Assert.Single(Directory.EnumerateDirectories(Receiver, ".part-step-00000012-*"));
        Assert.NotEmpty(CheckpointStore.Pinned(Sender));

        var fetched = Assert.IsType<Fetched>(await ExpectMsgAsync<object>(TimeSpan.FromSeconds(60)));
        Assert.Equal(CheckpointManifest.Of(source), CheckpointManifest.Of(fetched.Path));
        // The second holder was asked for no byte the first had already delivered.
        var firstModel = first.Take(3).Where(s => s.File == "model.safetensors").ToList();
        var resumedAt = second.First(s => s.File == "model.safetensors").Offset;
        Assert.True(resumedAt > 0 && resumedAt == firstModel.Max(s => s.Offset) + ChunkBytes,
            $"resumed at byte {resumedAt}, after chunks at {string.Join(", ", firstModel.Select(s => s.Offset))}");
    }

    [Fact]
    public void A_damaged_copy_is_rejected_by_its_checksum_and_never_becomes_a_checkpoint()
    {
        string source = TestCheckpoint.Write(Sender, 4, floats: 50_000);
        var seen = new List<Relay.Seen>();
        var corrupting = Sys.ActorOf(Props.Create(() => new Relay(Server(), seen, int.MaxValue, true, null)));

        var failed = Assert.IsType<FetchFailed>(Fetch(source, [corrupting], settings: Settings(attempts: 2)));

        Assert.Contains("SHA-256", failed.Reason);
        Assert.Contains("model.safetensors", failed.Reason);
        Assert.Empty(CheckpointStore.List(Receiver));
        Assert.False(Directory.Exists(Path.Combine(Receiver, "step-00000004")));
        // It was fetched again after the first mismatch (and damaged again).
        Assert.True(seen.Count(s => s.File == "model.safetensors" && s.Offset == 0) >= 2);
    }

    [Fact]
    public void A_checkpoint_already_here_with_the_same_bytes_is_used_in_place_without_copying()
    {
        string source = TestCheckpoint.Write(Sender, 16, floats: 10_000);
        var seen = new List<Relay.Seen>();
        var relay = Sys.ActorOf(Props.Create(() => new Relay(Server(), seen, int.MaxValue, false, null)));

        var fetched = Assert.IsType<Fetched>(Fetch(source, [relay], inPlace: true));

        Assert.Equal(source, fetched.Path);
        Assert.Equal(0, fetched.Bytes);
        Assert.Empty(seen);
        Assert.False(Directory.Exists(Receiver) && CheckpointStore.List(Receiver).Count > 0);
    }

    [Fact]
    public void The_server_serves_only_files_of_complete_checkpoints()
    {
        var server = Server();
        Directory.CreateDirectory(Path.Combine(_root, "not-a-checkpoint"));
        server.Tell(new GetManifest(Path.Combine(_root, "not-a-checkpoint"), "s1"));
        Assert.Contains("not a checkpoints/step-N directory", ExpectMsg<Refused>().Reason);
        server.Tell(new GetManifest(Path.Combine(Sender, "step-00000099"), "s1"));
        ExpectMsg<Refused>();
        string source = TestCheckpoint.Write(Sender, 20, floats: 1_000);
        server.Tell(new GetChunk(source, "../../../etc/passwd", 0, 100, "s2"));
        Assert.Contains("not a file of this checkpoint's manifest", ExpectMsg<Refused>().Reason);
        server.Tell(new GetManifest(source, "s2"));
        var manifest = ExpectMsg<Manifest>();
        Assert.Equal(20, manifest.Step);
        Assert.Equal(CheckpointManifest.Of(source), manifest.Files);
        server.Tell(new GetChunk(source, "../../../etc/passwd", 0, 100, "s2"));
        ExpectMsg<Refused>();
        server.Tell(new Release(source, "s2"));
    }

    public new void Dispose()
    {
        base.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
