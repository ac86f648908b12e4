using Akka.Actor;
using Akka.Configuration;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Hosting;
using LiteVae.Actors.Tests.Synthetic;
using LiteVae.Actors.Training;
using LiteVae.Data.Config;

namespace LiteVae.Actors.Tests.Cluster;

/// <summary>In-process cluster nodes (separate ActorSystems talking over loopback remoting) for the actor tests.</summary>
public static class TestNodes
{
    public const string Dispatcher = "litevae.gpu-dispatcher";

    /// <summary>hocon/base.conf with test overrides: every message serialized (catches unserializable ones),
    /// quick split-brain decisions, quiet logs.</summary>
    public static Config NodeConfig(IEnumerable<string> roles, string extra = "") =>
        ConfigurationFactory.ParseString($$"""
            akka.cluster.roles = [{{string.Join(",", roles)}}]
            akka.actor.serialize-messages = on
            akka.cluster.split-brain-resolver.stable-after = 3s
            akka.cluster.failure-detector.acceptable-heartbeat-pause = 3s
            akka.loglevel = WARNING
            akka.remote.dot-netty.tcp.port = 0
            {{extra}}
            """).WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "base.conf"))));

    public static ActorSystem Start(IEnumerable<string> roles, Address? seed, string extra = "")
    {
        var system = ActorSystem.Create(ClusterRoles.SystemName, NodeConfig(roles, extra));
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.Join(seed ?? cluster.SelfAddress);
        return system;
    }

    public static RunPlan Plan(string runDir, TestShards shards, DataConfig data, long maxSteps, int checkpointEvery = 10, int logEvery = 5)
    {
        var order = shards.Order(data);
        return new RunPlan("litevae.test = 1", runDir, order.Fingerprint, order.SamplesPerEpoch, shards.Paths.Count, data.BatchSize, maxSteps,
            checkpointEvery, logEvery, false);
    }

    public static DataRoleOptions Data(string node, DataConfig data, int maxLeases = 2) =>
        new(new DataNodeSettings(node, maxLeases, 1024, TimeSpan.FromMilliseconds(200)), TestShards.Binder(data));

    public static TrainerRoleOptions Trainer(string node, SyntheticEngine.Options engine, ICheckpointStore store, DataConfig data) =>
        new(new TrainerSettings(node, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(1), TestShards.Binder(data)), () => new SyntheticEngine(engine),
            store, 4, Dispatcher, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(20));

    public static EvalRoleOptions Eval(string node) =>
        new(node, r => new SyntheticEvalJob(r), Dispatcher, TimeSpan.FromMilliseconds(300));

    public static CoordinatorRoleOptions Coordinator(RunPlan plan, ICheckpointStore store) =>
        new(plan, store, new CoordinatorSettings(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(30), false));
}
