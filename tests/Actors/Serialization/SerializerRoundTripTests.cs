using LiteVae.Model.Metrics;
using Akka.Actor;
using Akka.Configuration;
using Akka.Streams;
using Akka.Streams.Dsl;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Serialization;
using LiteVae.Data;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Tests.Serialization;

public sealed class SerializerRoundTripTests : Akka.TestKit.Xunit2.TestKit
{
    public SerializerRoundTripTests() : base(ConfigurationFactory.ParseString(SerializationSetup.Hocon), "litevae") { }

    private IActorRef Ref => TestActor;

    public static IEnumerable<object[]> Messages()
    {
        SampleInfo[] samples = [new(40, 1, 2, 3, "a/b-0003"), new(41, 1, 2, 4, "ü-4")];
        SkippedSample[] skipped = [new(42, 1, 0, 9, "bad", BadReason.NotAnImage, "no decoder knows these bytes")];
        var counts = new SampleCounts(300, 2, 0, new Dictionary<string, long> { ["not-an-image"] = 2 });
        var queue = new QueueDepth("node-a", "decoded", 3, 8);
        var losses = new Dictionary<string, double> { ["l1"] = 0.25, ["kl"] = double.NaN };
        var metric = new MetricValue("psnr", 27.5, null);
        var noMetric = new MetricValue("lpips", null, "no LPIPS weight file configured");
        var eval = new EvaluationStatus("job-1", EvaluationStatus.Done, "/r/ck/step-10", "node-e", [metric, noMetric], null, "/r/eval/step-10.json");
        object[] all =
        [
            new DataProtocol.DataPlan("c1", 3, "model { nz = 4 }", null, "9f86d081884c7d65", "00-abc-def-01"),
            new DataProtocol.BatchLeased("c1", 3, 17, 40, 3, null),
            new DataProtocol.NoLeaseAvailable("c1", 3, "no trainer yet"),
            new BatchChunk(40, 3, 0, 2, 4, 4, samples, skipped, new byte[] { 1, 2, 3, 250 }),
            new BatchChunk(40, 3, 1, 2, 4, 4, [], [], new byte[] { 9 }),
            new TrainerProtocol.StartTraining("c1", "x = 1", "/runs/a", "/runs/a/checkpoints/last", 500, 100, 10, "9f86d081884c7d65", 1281167, null),
            new TrainerProtocol.TrainerReady("c1", 20, 640),
            new TrainerProtocol.BeginSteps("c1", 4),
            new TrainerProtocol.BatchTrained("c1", 21, 672),
            new TrainerProtocol.TrainerProgress("c1", "n", 21, 12.5, 0.08, 0.01, losses, 2, 4, 672, 1, counts, 3, false),
            new TrainerProtocol.TrainingFinished("c1", 500, "/runs/a/checkpoints/last"),
            new TrainerProtocol.TrainingFinished("c1", 20, null, "data: 5 of 10 samples are bad"),
            new TrainerProtocol.PauseTraining(null),
            new TrainerProtocol.ResumeTraining("00-1-2-01"),
            new TrainerProtocol.SaveCheckpointNow("user", null),
            new TrainerProtocol.StopTraining("stop command", null),
            new GroupProtocol.CreateGroupAddresses("c1", 2, 4),
            new GroupProtocol.GroupAddressesCreated("c1", 2, [new CollectiveAddress("control", "tcp", [1, 2, 3]), new CollectiveAddress("data", "nccl", new byte[128])]),
            new GroupProtocol.JoinTrainerGroup("c1", 2, 3, 4, [new CollectiveAddress("data", "tcp", [0, 255])]),
            new GroupProtocol.TrainerGroupJoined("c1", 2, 3),
            new GroupProtocol.AbortTrainerGroup("c1", 2, "trainer on n2 was lost"),
            new CheckpointEvents.CheckpointSaved(20, "/runs/a/checkpoints/step-00000020", "interval", 0.5),
            new CheckpointEvents.CheckpointFailed(20, "disk full"),
            new EvalProtocol.RunEvaluation("job-1", "/r/ck", null, "x = 1", "/r", null),
            new EvalProtocol.EvaluationStarted("job-1", "node-e"),
            new EvalProtocol.EvaluationFinished("job-1", true, null, [metric, noMetric], "/r/eval.json", 16, 2.5),
            eval,
            new TransferProtocol.GetManifest("/r/checkpoints/step-00000010", "s1"),
            new TransferProtocol.Manifest("/r/checkpoints/step-00000010", 10,
                [new LiteVae.Model.Checkpoints.FileDigest("trainer-state.json", 120, "ab12"), new LiteVae.Model.Checkpoints.FileDigest("model.safetensors", 4096, "cd34")]),
            new TransferProtocol.GetChunk("/r/checkpoints/step-00000010", "model.safetensors", 1024, 1 << 20, "s1"),
            new TransferProtocol.Chunk("/r/checkpoints/step-00000010", "model.safetensors", 1024, [0, 1, 2, 255]),
            new TransferProtocol.Chunk("/r/ck/step-1", "é.bin", 0, []),
            new TransferProtocol.Release("/r/checkpoints/step-00000010", "s1"),
            new TransferProtocol.Refused("/r/checkpoints/step-00000010", "no complete checkpoint there"),
            new CheckpointEvents.CheckpointSaved(20, "/b/checkpoints/step-00000020", "interval", 0.5, null),
            new CheckpointEvents.CheckpointStored(20, "/a/checkpoints/step-00000020"),
            new CheckpointEvents.CheckpointStored(24, null, "b is gone"),
            new ClientProtocol.GetClusterStatus(null),
            new ClientProtocol.ClusterStatus("training", "/r", 21, 500, 12.5, 0.01, losses, [queue],
                [new MemberInfo("akka.tcp://litevae@127.0.0.1:4053", "Up", ["coordinator", "trainer"], true)],
                [10, 20], new DataAccounting(1, 672, 300, 2, 3, 1, counts.ByReason), [eval]),
            new ClientProtocol.RequestEvaluation("step-10", "/data/eval-{0..3}.tar", null),
            new ClientProtocol.EvaluationAccepted("job-1", "/r/ck/step-10"),
            new ClientProtocol.GetEvaluation("job-1"),
            new ClientProtocol.RequestCheckpoint(null),
            new ClientProtocol.RequestStop(null),
            new AuthorizedCommand("token-1", "c7", [1, 2, 3]),
            new ClientProtocol.RunStopped(21, "/r/ck/last"),
            new ClientProtocol.CommandRejected("eval", "no checkpoint 'step-7'"),
        ];
        return all.Select(m => new[] { m });
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void Plain_messages_round_trip_with_their_manifest(object message)
    {
        // Value equality (NaN losses included: double.Equals treats NaN as equal to itself).
        Assert.Equal(message, RoundTrip(message, out _));
    }

    [Fact]
    public void Actor_references_round_trip()
    {
        var hb = new DataProtocol.DataNodeHeartbeat(Ref, "n", "c1", 3, 2, 1, 10, 160, 1, [new QueueDepth("n", "read", 1, 4)], "shards differ");
        var b = (DataProtocol.DataNodeHeartbeat)RoundTrip(hb, out _);
        Assert.Equal(hb, b);
        Assert.Equal(Ref, ((DataProtocol.RequestLease)RoundTrip(new DataProtocol.RequestLease(Ref, "c", 1), out _)).Worker);
        Assert.Equal(Ref, ((DataProtocol.DataStreamBroken)RoundTrip(new DataProtocol.DataStreamBroken(Ref, "c", "x"), out _)).Worker);
        Assert.Equal(Ref, ((DataProtocol.DataPlan)RoundTrip(new DataProtocol.DataPlan("c", 1, "", Ref, "f", null), out _)).Intake);
        // The run's home (its checkpoint server) travels in the start and evaluation messages; the writer's server with a checkpoint.
        var home = new TransferProtocol.RunHome("/a/run", "0123abcd", Ref);
        Assert.Equal(home, ((TrainerProtocol.StartTraining)RoundTrip(new TrainerProtocol.StartTraining("c1", "x = 1", "/a/run", null, 5, 2, 1, "f", 10, null, home), out _)).Home);
        Assert.Equal(home, ((EvalProtocol.RunEvaluation)RoundTrip(new EvalProtocol.RunEvaluation("job-1", "/a/run/checkpoints/step-1", null, "x = 1", "/a/run", null, home), out _)).Home);
        Assert.Equal(Ref, ((CheckpointEvents.CheckpointSaved)RoundTrip(new CheckpointEvents.CheckpointSaved(1, "/b/run/checkpoints/step-1", "interval", 0.1, Ref), out _)).Holder);
        var reg = (TrainerProtocol.RegisterTrainer)RoundTrip(new TrainerProtocol.RegisterTrainer(Ref, Ref, "n", "cpu", 4), out _);
        Assert.Equal((Ref, Ref), (reg.Trainer, reg.Intake));
        Assert.Equal(Ref, ((EvalProtocol.EvaluatorHeartbeat)RoundTrip(new EvalProtocol.EvaluatorHeartbeat(Ref, "n", null), out _)).Evaluator);
    }

    [Fact]
    public async Task A_stream_ref_offer_round_trips_and_still_streams()
    {
        var mat = Sys.Materializer();
        var chunk = new BatchChunk(1, 1, 0, 1, 1, 1, [new SampleInfo(1, 0, 0, 0, "k")], [], new byte[] { 7, 8, 9 });
        var sourceRef = await Source.Single(chunk).RunWith(StreamRefs.SourceRef<BatchChunk>(), mat);
        var offer = new DataProtocol.OfferBatchStream(sourceRef, Ref, "n", 1);
        var back = (DataProtocol.OfferBatchStream)RoundTrip(offer, out _);
        var got = await back.Source.Source.RunWith(Sink.Seq<BatchChunk>(), mat);
        Assert.Equal([chunk], got);
    }

    [Fact]
    public void Every_wire_message_type_has_a_manifest_and_a_round_trip_case()
    {
        var wire = typeof(ILiteVaeMessage).Assembly.GetTypes()
            .Where(t => typeof(ILiteVaeMessage).IsAssignableFrom(t) && !t.IsInterface && !t.IsAbstract).ToHashSet();
        var covered = Messages().Select(m => m[0].GetType()).ToHashSet();
        covered.UnionWith([typeof(DataProtocol.DataNodeHeartbeat), typeof(DataProtocol.RequestLease), typeof(DataProtocol.DataStreamBroken),
            typeof(TrainerProtocol.RegisterTrainer), typeof(EvalProtocol.EvaluatorHeartbeat), typeof(DataProtocol.OfferBatchStream)]);
        Assert.Empty(wire.Except(covered).Select(t => t.FullName));
        var manifests = Manifests.ByType;
        Assert.Empty(wire.Where(t => !manifests.ContainsKey(t)).Select(t => t.FullName));
        Assert.Equal(manifests.Count, manifests.Values.Distinct().Count());
        Assert.All(manifests.Values, m => Assert.True(m.Length <= 2, m));
    }

    [Fact]
    public void Manifests_are_frozen()
    {
        // Changing one of these breaks nodes of other versions: add new manifests instead.
        Assert.Equal("dB", Manifests.ByType[typeof(BatchChunk)]);
        Assert.Equal("dC", Manifests.ByType[typeof(DataProtocol.BatchLeased)]);
        Assert.Equal("c2", Manifests.ByType[typeof(ClientProtocol.ClusterStatus)]);
        Assert.Equal("tE", Manifests.ByType[typeof(TrainerProtocol.BatchTrained)]);
        // Retired manifests are never given to another message (a node of an older version would misread it).
        Assert.DoesNotContain(Manifests.ByType.Values, m => m is "d4" or "d6" or "d7" or "t5" or "t6" or "tD");
    }

    [Fact]
    public void A_corrupt_chunk_is_a_clear_serialization_error()
    {
        var s = (LiteVaeSerializer)Sys.Serialization.FindSerializerForType(typeof(BatchChunk));
        var bytes = s.ToBinary(new BatchChunk(1, 1, 0, 1, 1, 1, [], [], new byte[] { 1, 2, 3 }));
        var e = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => s.FromBinary(bytes[..^1], "dB"));
        Assert.Contains("pixel length", e.Message);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => s.FromBinary(bytes, "zz"));
    }

    private object RoundTrip(object message, out string manifest)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<LiteVaeSerializer>(serializer);
        manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        return Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
    }
}
