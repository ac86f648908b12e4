using Akka.Actor;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Hosting;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Tests.Synthetic;
using LiteVae.Data.Config;
using LiteVae.Data.Order;
using static LiteVae.Actors.Protocol.ClientProtocol;

namespace LiteVae.Actors.Tests.Cluster;

/// <summary>
/// The actors end to end with real tar shards (solid-colour images), the real data pipeline and a synthetic
/// trainer that checks every image: one node with every role, and nodes in separate ActorSystems that pass
/// batches over loopback remoting (StreamRefs of chunks).
/// </summary>
public sealed class InProcessClusterTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _runDir = Directory.CreateTempSubdirectory("litevae-actors-").FullName;
    private readonly List<ActorSystem> _others = [];
    private readonly SyntheticStore _store = new();

    public InProcessClusterTests() : base(TestNodes.NodeConfig([ClusterRoles.Coordinator, ClusterRoles.Trainer, ClusterRoles.Eval]), ClusterRoles.SystemName) { }

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private Akka.TestKit.TestProbe WatchRun()
    {
        var probe = CreateTestProbe();
        Sys.EventStream.Subscribe(probe.Ref, typeof(RunFinished));
        return probe;
    }

    private (IActorRef Gateway, IActorRef Proxy) StartCoreAndCoordinator(RunPlan plan)
    {
        Akka.Cluster.Cluster.Get(Sys).Join(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        var proxy = RoleStarter.StartCoordinatorProxy(Sys);
        RoleStarter.StartCoordinator(Sys, TestNodes.Coordinator(plan, _store));
        return (RoleStarter.StartGateway(Sys, proxy, LiteVae.Actors.Security.CommandAuthorizer.InProcess()), proxy);
    }

    /// <summary>The coordinator, a data node and a trainer in this ActorSystem, on the run of <paramref name="maxSteps"/>.</summary>
    private (IActorRef Gateway, IActorRef Proxy) StartLocalRun(TestShards shards, DataConfig data, long maxSteps, SyntheticEngine.Options engine)
    {
        var (gateway, proxy) = StartCoreAndCoordinator(TestNodes.Plan(_runDir, shards, data, maxSteps));
        RoleStarter.StartDataNode(Sys, TestNodes.Data("local", data), proxy);
        RoleStarter.StartTrainer(Sys, TestNodes.Trainer("local", engine, _store, data), proxy);
        return (gateway, proxy);
    }

    private static T AskGateway<T>(IActorRef gateway, object message)
    {
        var reply = gateway.Ask<object>(message, TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
        return reply is T t ? t : throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {reply}");
    }

    private TestShards Shards(int[] sizes, int badEvery = 0) => new(Path.Combine(_runDir, "shards"), sizes, badEvery);

    [Fact]
    public void One_node_with_every_role_trains_every_sample_once_in_order_checkpoints_and_evaluates()
    {
        var shards = Shards([10, 7, 13, 5], badEvery: 6);
        var data = shards.Data(batch: 4);
        var order = shards.Order(data);
        var engine = new SyntheticEngine.Options();
        var run = WatchRun();
        var (gateway, proxy) = StartLocalRun(shards, data, maxSteps: 40, engine);
        RoleStarter.StartEvaluator(Sys, TestNodes.Eval("local"), proxy);

        var done = run.ExpectMsg<RunFinished>(Long);
        Assert.Equal(40, done.Step);
        // Interval checkpoints come every 10 steps; the checkpointer may drop a waiting one when the disk is behind
        // (a slow CI machine: step-10 still being written when 20, 30 and 40 arrive), never the final one.
        var written = _store.List(_runDir).Select(c => c.Step).ToList();
        Assert.Equal(40, written[^1]);
        Assert.All(written, s => Assert.Contains(s, new long[] { 10, 20, 30, 40 }));

        // The trainer took the batches in the run's order, one span after the other, and trained exactly the good
        // samples of those spans: the sample order cut into batches of 4, bad ones (every 6th index) left out.
        var status = AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null));
        Assert.Equal(Coordinator.RunFinishedState, status.RunState);
        lock (engine.Consumed)
        {
            Assert.Equal(Enumerable.Range(0, engine.Starts.Count).Select(k => 4L * k), engine.Starts);
            long next = engine.Starts[^1] + 4;
            var expected = Enumerable.Range(0, (int)next).Select(n => order.At(n)).Where(r => r.Index % 6 != 5).ToList();
            Assert.Equal(expected, engine.Consumed);
            Assert.True(next > 2 * order.SamplesPerEpoch, $"only {next} samples in: the run should cross epochs");
            Assert.Equal(expected.Count, status.Data.SamplesTrained);
            Assert.Equal(next - expected.Count, status.Data.SamplesSkipped);
            Assert.Equal(next, status.Data.NextSample);
        }
        Assert.Equal(status.Data.SamplesSkipped, status.Data.SkippedByReason["not-an-image"]);
        Assert.Contains(status.Members, m => m.Roles.Contains(ClusterRoles.Trainer) && m.Status == "Up");

        // eval --cluster: a known checkpoint runs; an unknown one is a clear rejection.
        long first = written[0];
        var accepted = AskGateway<EvaluationAccepted>(gateway, new RequestEvaluation($"step-{first}", null, null));
        AwaitCondition(() => AskGateway<EvaluationStatus>(gateway, new GetEvaluation(accepted.JobId)).State == EvaluationStatus.Done, Long);
        var result = AskGateway<EvaluationStatus>(gateway, new GetEvaluation(accepted.JobId));
        Assert.Equal(first, result.Metrics.Single(m => m.Name == "step").Value);
        // The job kept its checkpoint from retention while it waited and ran, and let go when it ended.
        Assert.Contains((accepted.JobId, Path.Combine(_runDir, "checkpoints", $"step-{first:D8}")), _store.PinHistory);
        AwaitCondition(() => _store.Pins.IsEmpty, Long);
        // A checkpoint that retention removes between the lookup and the pin is a clear rejection.
        _store.RemovedBeforePin.Add("step-00000040");
        var removed = AskGateway<CommandRejected>(gateway, new RequestEvaluation("last", null, null));
        Assert.Contains("retention removed it", removed.Reason);
        var rejected = AskGateway<CommandRejected>(gateway, new RequestEvaluation("step-7", null, null));
        Assert.Contains("step-7", rejected.Reason);
        Assert.Contains("step-40", rejected.Reason);
    }

    [Fact]
    public void A_training_set_with_no_readable_sample_stops_the_run_with_the_reason()
    {
        var shards = Shards([6, 4], badEvery: 1);   // every sample undecodable
        var data = shards.Data(batch: 4);
        var run = WatchRun();
        var (gateway, proxy) = StartLocalRun(shards, data, maxSteps: 1000, new SyntheticEngine.Options());

        var done = run.ExpectMsg<RunFinished>(Long);
        Assert.True(done.Failed);
        Assert.Equal(0, done.Step);
        Assert.Contains("in a row (a whole epoch of 10) without one readable image (not-an-image", done.Reason);
        Assert.Contains("litevae shards check", done.Reason);
        Assert.Equal(Coordinator.RunFinishedState, AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null)).RunState);
    }

    [Fact]
    public void A_final_checkpoint_that_cannot_be_written_ends_the_run_as_failed_naming_the_last_complete_one()
    {
        var shards = Shards([10, 10]);
        var data = shards.Data(batch: 4);
        _store.FailFromStep = 12;   // the interval checkpoint at 10 is written; the final one at 12 is not
        var run = WatchRun();
        var (gateway, proxy) = StartLocalRun(shards, data, maxSteps: 12, new SyntheticEngine.Options());

        var done = run.ExpectMsg<RunFinished>(Long);
        Assert.True(done.Failed);
        Assert.Equal(12, done.Step);
        Assert.Contains("the final checkpoint (step 12) could not be written: ", done.Reason);
        Assert.Contains("No space left on device", done.Reason);
        Assert.Contains($"the last complete one is {Path.Combine(_runDir, "checkpoints", "step-00000010")}", done.Reason);
        Assert.Equal(Coordinator.RunFinishedState, AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null)).RunState);
    }

    [Fact]
    public void Checkpoints_faster_than_evaluations_keep_only_the_newest_waiting()
    {
        var shards = Shards([10, 10, 10]);
        var data = shards.Data();
        var run = WatchRun();
        var plan = TestNodes.Plan(_runDir, shards, data, maxSteps: 60, checkpointEvery: 5) with { EvalEachCheckpoint = true };
        var (gateway, proxy) = StartCoreAndCoordinator(plan);
        RoleStarter.StartEvaluator(Sys, new EvalRoleOptions("local", r => new SyntheticEvalJob(r, TimeSpan.FromSeconds(1)),
            TestNodes.Dispatcher, TimeSpan.FromMilliseconds(300)), proxy);
        AwaitCondition(() => AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null)).Members.Count > 0, Long);
        Thread.Sleep(1000);   // the evaluator's first heartbeat: checkpoint jobs start only with an eval node up
        RoleStarter.StartDataNode(Sys, TestNodes.Data("local", data), proxy);
        RoleStarter.StartTrainer(Sys, TestNodes.Trainer("local", new SyntheticEngine.Options(), _store, data), proxy);

        Assert.Equal(60, run.ExpectMsg<RunFinished>(Long).Step);
        AwaitCondition(() => _store.Pins.IsEmpty, Long);   // the last jobs ran and let go of their checkpoints
        var evals = AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null)).Evaluations;
        // One job running and one waiting at most, so at most two checkpoints held back from retention.
        Assert.InRange(_store.MaxPinsHeld, 1, 2);
        Assert.Contains(evals, e => e.State == EvaluationStatus.Failed && e.Error!.StartsWith("superseded by the checkpoint of step"));
        Assert.Contains(evals, e => e.State == EvaluationStatus.Done);
    }

    [Fact]
    public void A_crashed_trainer_is_restarted_and_resumes_from_the_last_checkpoint_in_the_same_order()
    {
        var shards = Shards([12, 12, 12]);
        var data = shards.Data();
        var order = shards.Order(data);
        // The crash at step 15 waits until step-10 is on disk (its write is asynchronous; a slow disk could
        // otherwise make the restart begin from scratch, which is right but not what this test looks at).
        var engine = new SyntheticEngine.Options { GateAtStep = 15, CrashAtStep = 15 };
        var run = WatchRun();
        var (gateway, proxy) = StartLocalRun(shards, data, maxSteps: 30, engine);
        Assert.True(engine.AtGate.Wait(Long));
        AwaitCondition(() => _store.List(_runDir).Any(c => c.Step == 10), Long);
        engine.Release.Set();

        Assert.Equal(30, run.ExpectMsg<RunFinished>(Long).Step);
        Assert.Equal([0L, 10], engine.RestoredSteps);   // fresh, then from checkpoint step-10 after the crash
        Assert.Equal(2, engine.Initialisations);
        lock (engine.Consumed)
        {
            // Steps 11..14 ran twice (before the crash, and again after resuming from step 10), on the same batches.
            var starts = engine.Starts;
            Assert.Equal(Enumerable.Range(0, 14).Select(k => 4L * k).Concat(Enumerable.Range(10, 20).Select(k => 4L * k)), starts);
        }

        // A command that needs a role nobody has is a clear rejection, and the cluster stays up.
        var noEval = AskGateway<CommandRejected>(gateway, new RequestEvaluation("last", null, null));
        Assert.Contains("no node with role 'eval'", noEval.Reason);
        var noTrainer = AskGateway<CommandRejected>(gateway, new RequestCheckpoint(null));
        Assert.Contains("no trainer is training (run is finished)", noTrainer.Reason);
        Assert.Equal(Coordinator.RunFinishedState, AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null)).RunState);
    }

    [Fact]
    public void Batches_cross_nodes_intact_and_a_lost_data_node_is_replaced_without_losing_or_repeating_a_sample()
    {
        var shards = Shards([9, 9, 9, 9, 9, 9]);
        var data = shards.Data();
        var order = shards.Order(data);
        var engine = new SyntheticEngine.Options { StepTime = TimeSpan.FromMilliseconds(10), GateAtStep = 15 };
        var run = WatchRun();
        var (gateway, proxy) = StartCoreAndCoordinator(TestNodes.Plan(_runDir, shards, data, maxSteps: 80));
        RoleStarter.StartTrainer(Sys, TestNodes.Trainer("trainer", engine, _store, data), proxy);
        long bytesBefore = Interlocked.Read(ref BatchIntake.BytesReceived);

        var seed = Akka.Cluster.Cluster.Get(Sys).SelfAddress;
        var (dataA, workerA) = StartData(seed, "data-a", data);
        // The trainer holds at step 15 while the data node fills the trainer's intake and its own pipeline.
        Assert.True(engine.AtGate.Wait(Long));
        Thread.Sleep(500);
        Assert.True(Interlocked.Read(ref BatchIntake.BytesReceived) > bytesBefore, "no bytes crossed the node boundary");

        // The data node's worker dies mid-run with batches leased to it (a graceful leave of the whole system
        // would take longer than the run); a replacement node joins and training continues.
        Watch(workerA);
        dataA.Stop(workerA);
        ExpectTerminated(workerA, TimeSpan.FromSeconds(10));
        StartData(seed, "data-b", data);
        _ = dataA.Terminate();
        engine.Release.Set();

        Assert.Equal(80, run.ExpectMsg<RunFinished>(Long).Step);
        var status = AskGateway<ClusterStatus>(gateway, new GetClusterStatus(null));
        Assert.True(status.Data.LeasesReissued > 0, "the lost node's batches were not leased again");
        lock (engine.Consumed)
        {
            // Every sample of the order up to where the run stopped, once each, in order: nothing lost, nothing twice.
            Assert.Equal(Enumerable.Range(0, 80 * 4).Select(n => order.At(n)), engine.Consumed);
            Assert.Equal(Enumerable.Range(0, 80).Select(k => 4L * k), engine.Starts);
        }
    }

    [Fact]
    public void A_run_resumed_with_three_data_nodes_trains_the_same_samples_per_step_as_one_data_node_uninterrupted()
    {
        var shards = Shards([11, 6, 9, 14]);
        var data = shards.Data(batch: 5);
        // Uninterrupted, one data node (the one in this process).
        var whole = new SyntheticEngine.Options();
        var run = WatchRun();
        var (_, proxy) = StartLocalRun(shards, data, maxSteps: 30, whole);
        Assert.Equal(30, run.ExpectMsg<RunFinished>(Long).Step);

        // Stopped at step 12 (the checkpoint of step 12 is its last), then resumed on a cluster with three data nodes.
        string second = Path.Combine(_runDir, "second");
        var first = new SyntheticEngine.Options();
        var resumed = new SyntheticEngine.Options();
        RunOn(second, shards, data, 12, first, dataNodes: 1);
        RunOn(second, shards, data, 30, resumed, dataNodes: 3);
        Assert.Equal([12L], resumed.RestoredSteps);
        Assert.Equal(whole.Starts, first.Starts.Concat(resumed.Starts));
        Assert.Equal(whole.Consumed, first.Consumed.Concat(resumed.Consumed));
    }

    /// <summary>A cluster of its own (a coordinator+trainer system and <paramref name="dataNodes"/> data-node systems)
    /// that trains the run in <paramref name="runDir"/> up to <paramref name="maxSteps"/>, resuming from its last checkpoint.</summary>
    private void RunOn(string runDir, TestShards shards, DataConfig data, long maxSteps, SyntheticEngine.Options engine, int dataNodes)
    {
        var main = TestNodes.Start([ClusterRoles.Coordinator, ClusterRoles.Trainer], null);
        _others.Add(main);
        var probe = CreateTestProbe(main);
        main.EventStream.Subscribe(probe.Ref, typeof(RunFinished));
        var proxy = RoleStarter.StartCoordinatorProxy(main);
        RoleStarter.StartCoordinator(main, TestNodes.Coordinator(TestNodes.Plan(runDir, shards, data, maxSteps), _store));
        RoleStarter.StartTrainer(main, TestNodes.Trainer("trainer", engine, _store, data), proxy);
        var seed = Akka.Cluster.Cluster.Get(main).SelfAddress;
        for (int i = 0; i < dataNodes; i++) StartData(seed, $"data-{i}", data);
        Assert.Equal(maxSteps, probe.ExpectMsg<RunFinished>(Long).Step);
    }

    private (ActorSystem System, IActorRef Worker) StartData(Akka.Actor.Address seed, string name, DataConfig data)
    {
        var system = TestNodes.Start([ClusterRoles.Data], seed);
        _others.Add(system);
        var proxy = RoleStarter.StartCoordinatorProxy(system);
        return (system, RoleStarter.StartDataNode(system, TestNodes.Data(name, data), proxy));
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var s in _others) s.Terminate().Wait(TimeSpan.FromSeconds(10));
        base.Dispose(disposing);
        try { Directory.Delete(_runDir, true); } catch (IOException) { }
    }
}
