using Akka.Actor;
using Akka.Hosting;

namespace LiteVae.Actors.Hosting;

/// <summary>Registry keys (empty marker types) for the actors other code asks for.</summary>
public sealed class CoordinatorProxyKey;
/// <summary>The Coordinator singleton's manager on a coordinator-role node (the node's readiness checks it started).</summary>
public sealed class CoordinatorManagerKey;
public sealed class GatewayKey;
public sealed class TrainerKey;
public sealed class DataNodeKey;
public sealed class EvaluatorKey;
public sealed class CheckpointServerKey;

/// <summary>
/// One Akka.Hosting extension per role. Call <see cref="WithLiteVaeCore"/> first (the coordinator proxy and
/// the gateway every node has), then the roles the node carries.
/// </summary>
public static class RoleExtensions
{
    public static AkkaConfigurationBuilder WithLiteVaeCore(this AkkaConfigurationBuilder b, Security.CommandAuthorizer authorizer) =>
        b.WithActors((system, registry) =>
        {
            var proxy = RoleStarter.StartCoordinatorProxy(system);
            registry.Register<CoordinatorProxyKey>(proxy);
            registry.Register<GatewayKey>(RoleStarter.StartGateway(system, proxy, authorizer));
        });

    public static AkkaConfigurationBuilder WithCoordinatorRole(this AkkaConfigurationBuilder b, CoordinatorRoleOptions o) =>
        b.WithActors((system, registry) => registry.Register<CoordinatorManagerKey>(RoleStarter.StartCoordinator(system, o)));

    public static AkkaConfigurationBuilder WithDataRole(this AkkaConfigurationBuilder b, DataRoleOptions o) =>
        b.WithActors((system, registry) =>
            registry.Register<DataNodeKey>(RoleStarter.StartDataNode(system, o, registry.Get<CoordinatorProxyKey>())));

    public static AkkaConfigurationBuilder WithTrainerRole(this AkkaConfigurationBuilder b, TrainerRoleOptions o) =>
        b.WithActors((system, registry) =>
            registry.Register<TrainerKey>(RoleStarter.StartTrainer(system, o, registry.Get<CoordinatorProxyKey>())));

    public static AkkaConfigurationBuilder WithEvalRole(this AkkaConfigurationBuilder b, EvalRoleOptions o) =>
        b.WithActors((system, registry) =>
            registry.Register<EvaluatorKey>(RoleStarter.StartEvaluator(system, o, registry.Get<CoordinatorProxyKey>())));
}
