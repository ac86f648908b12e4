using LiteVae.Host.Config;

namespace LiteVae.Host.Node.Management;

/// <summary>How a node finds its cluster (<c>litevae.node.discovery.method</c>).</summary>
public enum DiscoveryMethod
{
    /// <summary>The seed nodes of <c>litevae.node.seed-nodes</c>; none: a cluster of its own (today's path).</summary>
    Static,
    /// <summary>Cluster Bootstrap over Akka.Discovery's config method: a fixed list of management endpoints.</summary>
    Config,
    /// <summary>Cluster Bootstrap over Akka.Discovery.KubernetesApi: the pods matching a label selector.</summary>
    Kubernetes,
}

/// <summary>
/// <c>litevae.management.*</c>: the Akka.Management HTTP endpoint (health routes, and the contact point
/// Cluster Bootstrap probes). Off unless enabled or a discovery method needs it.
/// </summary>
/// <param name="Hostname">The host others reach the endpoint at (what bootstrap compares contact points with).</param>
/// <param name="BindHostname">Where it listens; 0.0.0.0 in a container whose address is only known at run time.</param>
public sealed record ManagementSettings(bool Enabled, string Hostname, int Port, string BindHostname)
{
    public static readonly ManagementSettings Off = new(false, "127.0.0.1", 8558, "127.0.0.1");

    /// <summary>The base URI other nodes and probes use (host as others see it).</summary>
    public string Url => $"http://{Hostname}:{Port}";
}

/// <summary><c>litevae.node.discovery.*</c>: how Cluster Bootstrap finds the other nodes (unused with <see cref="DiscoveryMethod.Static"/>).</summary>
/// <param name="ServiceName">The name the nodes of one cluster share: config discovery's service, and what fills <c>{0}</c> in the pod label selector.</param>
/// <param name="Endpoints">Config discovery: the management endpoints (host:port) of the nodes that may form the cluster.</param>
/// <param name="RequiredContactPoints">Bootstrap forms a new cluster only after seeing this many contact points.</param>
/// <param name="NewCluster">Off: never form a new cluster, only join one (set it once the cluster exists, against a split at redeploy).</param>
public sealed record DiscoverySettings(
    DiscoveryMethod Method, string ServiceName, IReadOnlyList<(string Host, int Port)> Endpoints, string PodLabelSelector,
    string PodNamespace, string PortName, int RequiredContactPoints, bool NewCluster, TimeSpan StableMargin)
{
    public static readonly DiscoverySettings Static = new(DiscoveryMethod.Static, "litevae", [], "app={0}", "", "management", 2, true, TimeSpan.FromSeconds(5));

    public bool Bootstraps => Method != DiscoveryMethod.Static;
}

/// <summary>Binds and checks <c>litevae.management</c> and <c>litevae.node.discovery</c> against each other and the seed nodes.</summary>
public static class ManagementBinder
{
    private static readonly string[] ManagementKeys = ["enabled", "hostname", "port", "bind-hostname"];
    private static readonly string[] DiscoveryKeys =
        ["method", "service-name", "endpoints", "pod-label-selector", "pod-namespace", "port-name", "required-contact-points", "new-cluster", "stable-margin-s"];

    public static (ManagementSettings Management, DiscoverySettings Discovery) Bind(
        HoconFile f, IReadOnlyList<(string Host, int Port)> seeds, string nodeHostname, string publicHostname)
    {
        if (f.Has("litevae.management")) f.Section("litevae.management").RejectUnknown(ManagementKeys, "litevae.management.");
        if (f.Has("litevae.node.discovery")) f.Section("litevae.node.discovery").RejectUnknown(DiscoveryKeys, "litevae.node.discovery.");

        var method = f.Choice("litevae.node.discovery.method", ["static", "config", "kubernetes"], "static") switch
        {
            "config" => DiscoveryMethod.Config,
            "kubernetes" => DiscoveryMethod.Kubernetes,
            _ => DiscoveryMethod.Static,
        };
        var endpoints = f.StringList("litevae.node.discovery.endpoints", [])
            .Select(s => NodeOptions.ParseAddress(s, $"{f.Source}: key 'litevae.node.discovery.endpoints'")).ToList();
        var discovery = new DiscoverySettings(
            method,
            f.String("litevae.node.discovery.service-name", "litevae"),
            endpoints,
            f.String("litevae.node.discovery.pod-label-selector", "app={0}"),
            f.String("litevae.node.discovery.pod-namespace", ""),
            f.String("litevae.node.discovery.port-name", "management"),
            f.Int("litevae.node.discovery.required-contact-points", 2, 1, 1000),
            f.Bool("litevae.node.discovery.new-cluster", true),
            TimeSpan.FromSeconds(f.Double("litevae.node.discovery.stable-margin-s", 5, 0.5, 600)));

        bool enabled = f.Bool("litevae.management.enabled", false);
        // Others must reach the endpoint at the same host the node announces for remoting: "" follows it.
        string hostname = f.String("litevae.management.hostname", "");
        if (hostname == "") hostname = publicHostname == "" ? nodeHostname : publicHostname;
        string bind = f.String("litevae.management.bind-hostname", "");
        var management = new ManagementSettings(enabled, hostname,
            // Not 0: bootstrap announces the configured port as this node's contact point, so it must be the real one.
            f.Int("litevae.management.port", 8558, 1, 65535),
            bind == "" ? nodeHostname : bind);

        if (!discovery.Bootstraps) return (management, discovery);

        string m = method == DiscoveryMethod.Config ? "config" : "kubernetes";
        if (seeds.Count > 0)
            throw new ConfigException($"{f.Source}: keys 'litevae.node.seed-nodes' and 'litevae.node.discovery.method = {m}' are both set; " +
                                      "a node finds its cluster one way: set litevae.node.seed-nodes = [] (Cluster Bootstrap finds the seeds) " +
                                      "or litevae.node.discovery.method = static.");
        if (!enabled)
            throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.method = {m}' needs the management endpoint " +
                                      "(Cluster Bootstrap probes the other nodes over it); set litevae.management.enabled = on " +
                                      "and litevae.management.port (a port every node of the cluster can reach).");
        if (discovery.ServiceName == "")
            throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.service-name' is empty; give the name the nodes of this cluster share, e.g. \"litevae\".");
        if (method == DiscoveryMethod.Config)
        {
            if (endpoints.Count == 0)
                throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.endpoints' is empty but discovery.method = config; " +
                                          "list the management endpoints (host:port, litevae.management.port of each node) of the nodes that form the cluster, " +
                                          "e.g. [\"10.0.0.1:8558\", \"10.0.0.2:8558\"].");
            if (!endpoints.Contains((management.Hostname, management.Port)))
                throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.endpoints' does not list this node's own management endpoint " +
                                          $"{management.Hostname}:{management.Port} (litevae.management.hostname/port); list every node, this one included, " +
                                          "with the same host spelling: bootstrap recognises itself by it, and the lowest-addressed node forms the cluster.");
            if (discovery.RequiredContactPoints > endpoints.Count)
                throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.required-contact-points' = {discovery.RequiredContactPoints} is more than " +
                                          $"the {endpoints.Count} endpoint(s) listed; the cluster could never form. Lower it or list more endpoints.");
        }
        else if (discovery.PodLabelSelector == "")
            throw new ConfigException($"{f.Source}: key 'litevae.node.discovery.pod-label-selector' is empty; give the labels of this cluster's pods, e.g. \"app={{0}}\" ({{0}} = service-name).");
        return (management, discovery);
    }
}
