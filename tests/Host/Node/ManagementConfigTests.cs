using Akka.Actor;
using Akka.Cluster;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Host.Node.Management;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LiteVae.Host.Tests.Node;

/// <summary>
/// litevae.management and litevae.node.discovery: the default is today's static seeds with no management endpoint;
/// config and Kubernetes discovery bind; contradictory or incomplete settings are refused naming the key and the fix;
/// the liveness and readiness decisions.
/// </summary>
public class ManagementConfigTests
{
    private static string Preset(string name) => Path.Combine(AppContext.BaseDirectory, "hocon", name);

    private static NodeOptions Bind(string preset, params string[] sets) => NodeOptions.Bind(HoconFile.Load(Preset(preset), sets));

    private static readonly string[] Config =
    [
        "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=config", "litevae.management.enabled=on", "litevae.management.port=8601",
        "litevae.node.discovery.endpoints=[\"127.0.0.1:8601\", \"127.0.0.1:8602\", \"127.0.0.1:8603\"]",
    ];

    [Theory]
    [InlineData("single-node.conf")]
    [InlineData("coordinator.conf")]
    [InlineData("data-node.conf")]
    [InlineData("trainer-node.conf")]
    [InlineData("eval-node.conf")]
    public void Every_preset_keeps_static_seeds_and_no_management_endpoint(string preset)
    {
        var o = Bind(preset);
        Assert.Equal(DiscoveryMethod.Static, o.Discovery.Method);
        Assert.False(o.Discovery.Bootstraps);
        Assert.False(o.Management.Enabled);
    }

    [Fact]
    public void Config_discovery_binds_its_endpoints_and_the_management_address_follows_the_node()
    {
        var o = Bind("data-node.conf", Config);
        Assert.Equal(DiscoveryMethod.Config, o.Discovery.Method);
        Assert.Equal([("127.0.0.1", 8601), ("127.0.0.1", 8602), ("127.0.0.1", 8603)], o.Discovery.Endpoints);
        Assert.Equal("litevae", o.Discovery.ServiceName);
        Assert.Equal(2, o.Discovery.RequiredContactPoints);
        Assert.True(o.Discovery.NewCluster);
        Assert.Equal(new ManagementSettings(true, "127.0.0.1", 8601, "127.0.0.1"), o.Management);
        Assert.Equal("http://127.0.0.1:8601", o.Management.Url);
        Assert.Empty(o.Seeds);
    }

    [Fact]
    public void Kubernetes_discovery_binds_the_selector_and_a_public_hostname_is_what_others_reach()
    {
        var o = Bind("data-node.conf", "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=kubernetes", "litevae.management.enabled=on",
            "litevae.node.hostname=0.0.0.0", "litevae.node.public-hostname=10.1.2.3", "litevae.node.discovery.pod-label-selector=\"app.kubernetes.io/part-of={0}\"",
            "litevae.node.discovery.required-contact-points=4", "litevae.node.discovery.new-cluster=off");
        Assert.Equal(DiscoveryMethod.Kubernetes, o.Discovery.Method);
        Assert.Equal("app.kubernetes.io/part-of={0}", o.Discovery.PodLabelSelector);
        Assert.Equal("management", o.Discovery.PortName);
        Assert.Equal(4, o.Discovery.RequiredContactPoints);
        Assert.False(o.Discovery.NewCluster);
        Assert.Equal(new ManagementSettings(true, "10.1.2.3", 8558, "0.0.0.0"), o.Management);
    }

    [Fact]
    public void Management_alone_serves_health_on_a_static_node()
    {
        var o = Bind("coordinator.conf", "litevae.management.enabled=on", "litevae.management.port=9000", "litevae.management.bind-hostname=0.0.0.0");
        Assert.Equal(DiscoveryMethod.Static, o.Discovery.Method);
        Assert.Equal([("127.0.0.1", 4053)], o.Seeds);
        Assert.Equal(new ManagementSettings(true, "127.0.0.1", 9000, "0.0.0.0"), o.Management);
    }

    [Theory]
    // The presets carry seed nodes: a node finds its cluster one way.
    [InlineData(new[] { "litevae.node.discovery.method=config", "litevae.management.enabled=on", "litevae.node.discovery.endpoints=[\"127.0.0.1:8558\"]" },
        "'litevae.node.seed-nodes' and 'litevae.node.discovery.method = config' are both set")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=kubernetes" },
        "needs the management endpoint")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=config", "litevae.management.enabled=on" },
        "'litevae.node.discovery.endpoints' is empty but discovery.method = config")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=config", "litevae.management.enabled=on", "litevae.node.discovery.endpoints=[\"127.0.0.1:8601\", \"127.0.0.1:8602\"]" },
        "does not list this node's own management endpoint 127.0.0.1:8558")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=config", "litevae.management.enabled=on", "litevae.node.discovery.endpoints=[\"localhost:8558\"]" },
        "does not list this node's own management endpoint")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=config", "litevae.management.enabled=on", "litevae.node.discovery.endpoints=[\"127.0.0.1:8558\"]" },
        "'litevae.node.discovery.required-contact-points' = 2 is more than the 1 endpoint(s) listed")]
    [InlineData(new[] { "litevae.node.discovery.endpoints=[\"127.0.0.1\"]" }, "'litevae.node.discovery.endpoints': malformed address '127.0.0.1'")]
    [InlineData(new[] { "litevae.node.discovery.method=dns" }, "'litevae.node.discovery.method' = 'dns' is not one of: static, config, kubernetes")]
    [InlineData(new[] { "litevae.management.port=0" }, "'litevae.management.port' = 0 is out of range [1, 65535]")]
    [InlineData(new[] { "litevae.management.prot=9000" }, "unknown key 'litevae.management.prot' (did you mean 'litevae.management.port'?)")]
    [InlineData(new[] { "litevae.node.discovery.endpoint=[]" }, "unknown key 'litevae.node.discovery.endpoint' (did you mean 'litevae.node.discovery.endpoints'?)")]
    [InlineData(new[] { "litevae.node.seed-nodes=[]", "litevae.node.discovery.method=kubernetes", "litevae.management.enabled=on", "litevae.node.discovery.pod-label-selector=\"\"" },
        "'litevae.node.discovery.pod-label-selector' is empty")]
    public void Contradictory_or_incomplete_settings_name_the_key_and_the_fix(string[] sets, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Bind("data-node.conf", sets));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(Preset("data-node.conf"), e.Message);
    }

    /// <summary>deploy/k8s/configmap.yaml's cluster.conf, layered after each role preset as the manifests do, binds.</summary>
    [Theory]
    [InlineData("coordinator.conf")]
    [InlineData("data-node.conf")]
    [InlineData("trainer-node.conf")]
    [InlineData("eval-node.conf")]
    public void The_kubernetes_configmap_binds_after_every_role_preset(string preset)
    {
        using var dir = new Support.TempDir();
        var yaml = File.ReadAllLines(Path.Combine(Support.RepoPaths.Root, "deploy", "k8s", "configmap.yaml"));
        int start = Array.FindIndex(yaml, l => l.Trim() == "cluster.conf: |") + 1;
        File.WriteAllLines(dir.File("cluster.conf"), yaml[start..].TakeWhile(l => l.StartsWith("    ") || l.Trim() == "").Select(l => l.Length >= 4 ? l[4..] : l));
        var o = NodeOptions.Bind(HoconFile.Load([Preset(preset), dir.File("cluster.conf")], ["litevae.node.hostname=10.1.2.3"]));
        Assert.Equal(DiscoveryMethod.Kubernetes, o.Discovery.Method);
        Assert.Equal("app={0}", o.Discovery.PodLabelSelector);
        Assert.Equal("management", o.Discovery.PortName);
        Assert.Empty(o.Seeds);
        Assert.Equal(new ManagementSettings(true, "10.1.2.3", 8558, "0.0.0.0"), o.Management);
        Assert.Equal(4053, o.Port);
    }

    [Fact]
    public void Liveness_fails_only_when_downed_gone_or_unable_to_join()
    {
        Assert.Equal(HealthStatus.Healthy, NodeHealth.Liveness(false, null, null).Status);                 // still joining
        Assert.Equal(HealthStatus.Healthy, NodeHealth.Liveness(false, null, MemberStatus.Up).Status);
        // A clean stop (litevae stop, SIGTERM) writes its final checkpoint: the kubelet must not kill it.
        Assert.Equal(HealthStatus.Healthy, NodeHealth.Liveness(false, CoordinatedShutdown.ClusterLeavingReason.Instance, MemberStatus.Leaving).Status);
        Assert.Equal(HealthStatus.Healthy, NodeHealth.Liveness(false, CoordinatedShutdown.ClrExitReason.Instance, MemberStatus.Exiting).Status);
        var downed = NodeHealth.Liveness(false, CoordinatedShutdown.ClusterDowningReason.Instance, MemberStatus.Down);
        Assert.Equal(HealthStatus.Unhealthy, downed.Status);
        Assert.Contains("exits with code 3", downed.Description);
        Assert.Equal(HealthStatus.Unhealthy, NodeHealth.Liveness(false, null, MemberStatus.Down).Status);   // marked down, shutdown not begun yet
        Assert.Equal(HealthStatus.Unhealthy, NodeHealth.Liveness(false, CoordinatedShutdown.ClusterJoinUnsuccessfulReason.Instance, null).Status);
        Assert.Equal(HealthStatus.Unhealthy, NodeHealth.Liveness(true, null, MemberStatus.Up).Status);
    }

    [Fact]
    public void Readiness_needs_Up_no_shutdown_and_every_role_actor()
    {
        Assert.Equal(HealthStatus.Healthy, NodeHealth.Readiness(MemberStatus.Up, false, 3, []).Status);
        foreach (var s in new MemberStatus?[] { null, MemberStatus.Joining, MemberStatus.WeaklyUp, MemberStatus.Leaving, MemberStatus.Exiting, MemberStatus.Down })
            Assert.Equal(HealthStatus.Unhealthy, NodeHealth.Readiness(s, false, 3, []).Status);
        Assert.Equal(HealthStatus.Unhealthy, NodeHealth.Readiness(MemberStatus.Up, true, 3, []).Status);   // stopping: take it out of service at once
        var missing = NodeHealth.Readiness(MemberStatus.Up, false, 3, ["data node"]);
        Assert.Equal(HealthStatus.Unhealthy, missing.Status);
        Assert.Contains("actors not started: data node", missing.Description);
    }

    [Fact]
    public void Readiness_expects_the_actors_of_each_role()
    {
        Assert.Equal(["coordinator proxy", "gateway"], NodeHealth.Expected(["data"]).Select(k => k.Name).Take(2));
        Assert.Equal(["coordinator proxy", "gateway", "coordinator singleton manager", "data node", "trainer", "evaluator"],
            NodeHealth.Expected(["coordinator", "data", "trainer", "eval"]).Select(k => k.Name));
    }
}
