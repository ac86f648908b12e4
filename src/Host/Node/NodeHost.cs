using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using LiteVae.Actors;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Hosting;
using LiteVae.Actors.Training;
using LiteVae.Host.Config;
using LiteVae.Host.Node.Management;
using LiteVae.Host.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LiteVae.Host.Node;

/// <summary>
/// Builds a node process: the generic host with Akka.Hosting's <c>AddAkka</c>, remoting and clustering
/// from the node's HOCON, and the actors of each role it carries.
/// </summary>
public static class NodeHost
{
    /// <param name="insecure">--insecure: listen beyond loopback without TLS (refused otherwise, see BindPolicy).</param>
    public static IHost Build(HoconFile file, NodeOptions o, NodeServices services, Action<ActorSystem>? started = null, bool insecure = false)
    {
        // Before anything else (the run directory included): a node that may not listen this way never starts.
        var security = NodeSecurity.Create(file, o.Hostname, insecure);
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,   // no appsettings, no env-var configuration: the node's HOCON is its config
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddHostedService(_ => new NativeMemoryTrim(o.MallocTrimInterval));
        var plan = o.Has(ClusterRoles.Coordinator)
            ? (services.Plan ?? throw new ConfigException($"{file.Source}: this node has the role 'coordinator' but no experiment; pass --config <experiment.conf>."))()
            : null;
        var authorizer = security.Authorizer(plan?.RunDir);

        NodeManagement.AddNodeHealthServices(builder.Services, o);
        builder.Services.AddAkka(ClusterRoles.SystemName, (ab, _) =>
        {
            ab.AddHocon(file.Raw, HoconAddMode.Prepend);
            security.Apply(ab);
            ab.WithRemoting(new RemoteOptions
            {
                HostName = o.Hostname,
                Port = o.Port,
                PublicHostName = o.PublicHostname == "" ? null : o.PublicHostname,
                EnableSsl = security.Identity is not null ? true : null,   // the certificate comes as a setup (security.Apply)
            });
            ab.WithClustering(new ClusterOptions
            {
                Roles = o.Roles.ToArray(),
                SeedNodes = o.Seeds.Select(s => $"{security.Scheme}://{ClusterRoles.SystemName}@{s.Host}:{s.Port}").ToArray(),
            });
            ab.WithLiteVaeCore(authorizer);
            ab.WithActors((system, registry) => registry.Register<CheckpointServerKey>(RoleStarter.StartCheckpointServer(system, o.Storage.ChunkBytes)));
            string node = "";
            ab.AddStartup((system, _) =>
            {
                var cluster = Cluster.Get(system);
                node = $"{cluster.SelfAddress.Host}:{cluster.SelfAddress.Port}";
                // No seeds and no discovery: a cluster of one. With discovery, Cluster Bootstrap joins (NodeManagement).
                if (o.Seeds.Count == 0 && !o.Discovery.Bootstraps) cluster.Join(cluster.SelfAddress);
            });
            // Before the `started` callback: once a node prints its address, its health endpoint answers.
            ab.WithNodeManagement(o, file.Source);
            if (plan is not null)
                ab.WithActors((system, registry) => registry.Register<CoordinatorManagerKey>(RoleStarter.StartCoordinator(system,
                    new CoordinatorRoleOptions(plan, services.Store,
                        o.Coordinator with { CheckpointServer = registry.Get<CheckpointServerKey>(), Storage = o.Storage }))));
            if (o.Has(ClusterRoles.Data))
                ab.WithActors((system, registry) => registry.Register<DataNodeKey>(RoleStarter.StartDataNode(system,
                    new DataRoleOptions(new DataNodeSettings(SelfName(system), o.MaxLeases, o.ChunkBytes, o.DataHeartbeat, o.DecodeWorkers), services.Bind),
                    registry.Get<CoordinatorProxyKey>())));
            if (o.Has(ClusterRoles.Trainer))
                ab.WithActors((system, registry) => registry.Register<TrainerKey>(RoleStarter.StartTrainer(system,
                    new TrainerRoleOptions(new TrainerSettings(SelfName(system), o.RegisterInterval, o.ProgressInterval, services.Bind, o.Storage), services.Engine,
                        services.Store, o.IntakeBatches, NodeOptions.GpuDispatcher, o.MinBackoff, o.MaxBackoff, o.FinalCheckpointTimeout,
                        registry.Get<CheckpointServerKey>()),
                    registry.Get<CoordinatorProxyKey>())));
            if (o.Has(ClusterRoles.Eval))
                ab.WithActors((system, registry) => registry.Register<EvaluatorKey>(RoleStarter.StartEvaluator(system,
                    new EvalRoleOptions(SelfName(system), services.EvalJobs, NodeOptions.GpuDispatcher, o.EvalHeartbeat, o.Storage),
                    registry.Get<CoordinatorProxyKey>())));
            if (started is not null)
                ab.AddStartup((system, _) => started(system));
        });
        return builder.Build();
    }

    private static string SelfName(ActorSystem system)
    {
        var a = Cluster.Get(system).SelfAddress;
        return $"{a.Host}:{a.Port}";
    }
}
