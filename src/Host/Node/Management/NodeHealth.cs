using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using LiteVae.Actors;
using LiteVae.Actors.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LiteVae.Host.Node.Management;

/// <summary>
/// The node's own health checks, registered as Akka.Hosting health checks next to Akka's built-in ones and
/// served by <see cref="HealthRoutes"/> on the management endpoint. The decisions are pure functions of what
/// the node knows about itself, so they are tested without a cluster.
/// </summary>
public static class NodeHealth
{
    public const string LivenessTag = "liveness", ReadinessTag = "readiness";

    /// <summary>
    /// Alive unless this node has been downed or its ActorSystem is gone: then a supervisor must replace it.
    /// A node still joining is alive (it may wait long for its peers: killing it would not help), and so is a
    /// node stopping cleanly (`litevae stop`, SIGTERM): it is writing its final checkpoint, and a liveness
    /// failure would make the kubelet kill it mid-write. Readiness drops at once in both cases.
    /// </summary>
    public static HealthCheckResult Liveness(bool terminated, CoordinatedShutdown.Reason? shutdown, MemberStatus? self) =>
        terminated ? HealthCheckResult.Unhealthy("the actor system has terminated")
        : shutdown is CoordinatedShutdown.ClusterDowningReason || self == MemberStatus.Down
            ? HealthCheckResult.Unhealthy($"downed: the cluster removed this node; it exits with code {NodeExit.Downed}, restart it to join again")
        : shutdown is CoordinatedShutdown.ClusterJoinUnsuccessfulReason
            ? HealthCheckResult.Unhealthy($"it could not join the cluster; it exits with code {NodeExit.JoinFailed}")
        : HealthCheckResult.Healthy(shutdown is null ? $"member {Describe(self)}" : $"stopping cleanly ({shutdown.GetType().Name})");

    /// <summary>
    /// Ready when this node is a cluster member Up, is not shutting down, and the actors of its roles have started
    /// (<paramref name="missing"/> names those that have not): only then can it do its part of a run.
    /// </summary>
    public static HealthCheckResult Readiness(MemberStatus? self, bool shuttingDown, int members, IReadOnlyList<string> missing) =>
        shuttingDown ? HealthCheckResult.Unhealthy($"shutting down (member {Describe(self)})")
        : self != MemberStatus.Up ? HealthCheckResult.Unhealthy($"not a cluster member Up yet (member {Describe(self)}; {members} member(s) known)")
        : missing.Count > 0 ? HealthCheckResult.Unhealthy($"actors not started: {string.Join(", ", missing)}")
        : HealthCheckResult.Healthy($"member Up in a cluster of {members}");

    private static string Describe(MemberStatus? s) => s?.ToString() ?? "unknown (not joined)";

    /// <summary>Registers the checks: Akka.Hosting's ActorSystem liveness, Akka.Cluster.Hosting's cluster readiness, and ours.</summary>
    public static AkkaConfigurationBuilder WithNodeHealthChecks(this AkkaConfigurationBuilder b, IReadOnlyList<string> roles)
    {
        b.WithActorSystemLivenessCheck(tags: [LivenessTag]);
        Akka.Cluster.Hosting.AkkaClusterHostingExtensions.WithAkkaClusterReadinessCheck(b, tags: [ReadinessTag]);
        b.WithHealthCheck("litevae-liveness", (system, _, _) =>
        {
            var cluster = Cluster.Get(system);
            return Task.FromResult(Liveness(system.WhenTerminated.IsCompleted, CoordinatedShutdown.Get(system).ShutdownReason, SelfStatus(cluster)));
        }, HealthStatus.Unhealthy, [LivenessTag]);
        b.WithHealthCheck("litevae-readiness", (system, registry, _) =>
        {
            var cluster = Cluster.Get(system);
            var missing = Expected(roles).Where(k => !registry.TryGet(k.Key, out IActorRef? _)).Select(k => k.Name).ToList();
            var state = cluster.State;
            return Task.FromResult(Readiness(SelfStatus(cluster), CoordinatedShutdown.Get(system).ShutdownReason is not null || cluster.IsTerminated,
                state.Members.Count, missing));
        }, HealthStatus.Unhealthy, [ReadinessTag]);
        return b;
    }

    /// <summary>Null until this node appears in its own membership (it has not joined).</summary>
    private static MemberStatus? SelfStatus(Cluster cluster)
    {
        var self = cluster.SelfMember;
        return cluster.State.Members.Any(m => m.UniqueAddress == self.UniqueAddress) ? self.Status : null;
    }

    /// <summary>The registry keys of the actors each role starts (NodeHost registers them); every node has the proxy and the gateway.</summary>
    internal static IEnumerable<(Type Key, string Name)> Expected(IReadOnlyList<string> roles)
    {
        yield return (typeof(CoordinatorProxyKey), "coordinator proxy");
        yield return (typeof(GatewayKey), "gateway");
        if (roles.Contains(ClusterRoles.Coordinator)) yield return (typeof(CoordinatorManagerKey), "coordinator singleton manager");
        if (roles.Contains(ClusterRoles.Data)) yield return (typeof(DataNodeKey), "data node");
        if (roles.Contains(ClusterRoles.Trainer)) yield return (typeof(TrainerKey), "trainer");
        if (roles.Contains(ClusterRoles.Eval)) yield return (typeof(EvaluatorKey), "evaluator");
    }
}
