using Akka.Discovery.Config.Hosting;
using Akka.Discovery.KubernetesApi;
using Akka.Hosting;
using Akka.Management;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Dsl;
using LiteVae.Host.Config;
using Microsoft.Extensions.DependencyInjection;

namespace LiteVae.Host.Node.Management;

/// <summary>
/// Wires Akka.Management into a node: the HTTP endpoint with the health routes, and, when
/// <c>litevae.node.discovery.method</c> is config or kubernetes, Akka.Discovery plus Cluster Bootstrap in place of
/// seed nodes. Nothing here runs unless <c>litevae.management.enabled</c> is on, so the static-seed path is as before.
/// </summary>
public static class NodeManagement
{
    /// <summary>
    /// The HealthCheckService that <see cref="HealthRoutes"/> runs (Akka.Hosting adds its registrations to it). Called on
    /// the host's services before AddAkka: its callback runs once the service collection is read-only.
    /// </summary>
    public static void AddNodeHealthServices(IServiceCollection services, NodeOptions o)
    {
        if (o.Management.Enabled) services.AddHealthChecks();
    }

    public static AkkaConfigurationBuilder WithNodeManagement(this AkkaConfigurationBuilder b, NodeOptions o, string source)
    {
        var m = o.Management;
        var d = o.Discovery;
        if (!m.Enabled) return b;

        b.WithNodeHealthChecks(o.Roles);
        // Not auto-started: the startup task below binds the routes (ManagementServer says why not Start()), so a port
        // that cannot be bound stops the node with a clear error; auto-start would only log it and exit with code 0.
        b.WithAkkaManagement(new AkkaManagementOptions
        {
            HostName = m.Hostname,
            Port = m.Port,
            BindHostName = m.BindHostname,
            BindPort = m.Port,
        }, autoStart: false);
        // Only what we serve: the health routes, and the bootstrap contact-point route when we bootstrap. The remote
        // address and ClusterClient receptionist routes of the reference config are switched off (nothing uses them,
        // and the endpoint is plain HTTP without authentication: it answers read-only questions only).
        b.AddHocon($$"""
            akka.management.http {
              route-providers-read-only = true
              routes {
                litevae-health = "{{typeof(HealthRoutes).AssemblyQualifiedName}}"
                cluster-bootstrap = "{{(d.Bootstraps ? "Akka.Management.Cluster.Bootstrap.ClusterBootstrapProvider, Akka.Management" : "")}}"
                remote-address = ""
                cluster-client-receptionist = ""
              }
            }
            """, HoconAddMode.Prepend);

        if (d.Method == DiscoveryMethod.Config)
            b.WithConfigDiscovery(new ConfigServiceDiscoveryOptions
            {
                Services = [new Service { Name = d.ServiceName, Endpoints = d.Endpoints.Select(e => $"{e.Host}:{e.Port}").ToArray() }],
            });
        else if (d.Method == DiscoveryMethod.Kubernetes)
            b.WithKubernetesDiscovery(new KubernetesDiscoveryOptions
            {
                PodLabelSelector = d.PodLabelSelector,
                PodNamespace = d.PodNamespace == "" ? null : d.PodNamespace,   // null: the pod's own namespace
            });
        if (d.Bootstraps)
        {
            var bootstrap = new ClusterBootstrapOptions { NewClusterEnabled = d.NewCluster };
            bootstrap.ContactPointDiscovery.ServiceName = d.ServiceName;
            bootstrap.ContactPointDiscovery.RequiredContactPointsNr = d.RequiredContactPoints;
            bootstrap.ContactPointDiscovery.StableMargin = d.StableMargin;
            // Every contact point discovered must answer before the lowest-addressed one forms a new cluster: with
            // fewer, two halves could each form their own.
            bootstrap.ContactPointDiscovery.ContactWithAllContactPoints = true;
            if (d.Method == DiscoveryMethod.Kubernetes)
                bootstrap.ContactPointDiscovery.PortName = d.PortName;   // the pod's container port of that name
            else
                // Config endpoints may share a host (several nodes on one machine, the loopback tests): without this,
                // bootstrap would keep only the endpoints on its own management port.
                bootstrap.ContactPoint.FilterOnFallbackPort = false;
            b.WithClusterBootstrap(bootstrap, autoStart: false);
        }

        b.AddStartup(async (system, _) =>
        {
            try
            {
                await ManagementServer.Start(system, m.BindHostname, m.Port);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
            {
                throw new ConfigException($"{source}: the management endpoint cannot listen on {m.BindHostname}:{m.Port} " +
                                          $"(keys 'litevae.management.bind-hostname' / 'litevae.management.port'): {e.Message}. " +
                                          "Pick a free port (every node on one host needs its own), or stop what holds this one.");
            }
            Console.WriteLine($"management endpoint {m.Url}  (health: {m.Url}{HealthRoutes.AlivePath}, {m.Url}{HealthRoutes.ReadyPath}" +
                              (d.Bootstraps ? $"; cluster bootstrap: {d.Method.ToString().ToLowerInvariant()} discovery of '{d.ServiceName}')" : ")"));
            if (d.Bootstraps) await ClusterBootstrap.Get(system).Start();
        });
        return b;
    }
}
