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
/// What every node starts first: the coordinator proxy and the gateway. The roles' actors are started by the
/// node's host (Host/Node/NodeHost.cs) through <see cref="RoleStarter"/>, each registered under its key above.
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
}
