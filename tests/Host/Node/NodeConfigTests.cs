using LiteVae.Actors;
using LiteVae.Host.Config;
using LiteVae.Host.Node;

namespace LiteVae.Host.Tests.Node;

/// <summary>Every node preset parses and binds; bad node settings and addresses are clear errors.</summary>
public class NodeConfigTests
{
    private static string Preset(string name) => Path.Combine(AppContext.BaseDirectory, "hocon", name);

    [Theory]
    [InlineData("single-node.conf", new[] { "coordinator", "data", "trainer", "eval" }, 0)]
    [InlineData("coordinator.conf", new[] { "coordinator", "trainer" }, 4053)]
    [InlineData("data-node.conf", new[] { "data" }, 4054)]
    [InlineData("trainer-node.conf", new[] { "trainer" }, 4055)]
    [InlineData("eval-node.conf", new[] { "eval" }, 4056)]
    public void Every_preset_binds_with_its_roles_on_loopback(string file, string[] roles, int port)
    {
        var o = NodeOptions.Bind(HoconFile.Load(Preset(file)));
        Assert.Equal(roles, o.Roles);
        Assert.Equal("127.0.0.1", o.Hostname);
        Assert.Equal(port, o.Port);
        var raw = HoconFile.Load(Preset(file)).Raw;
        Assert.Equal("keep-majority", raw.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal("", raw.GetString("akka.cluster.split-brain-resolver.keep-majority.role"));
        Assert.Equal("PinnedDispatcher", raw.GetString(NodeOptions.GpuDispatcher + ".type"));
        Assert.True(raw.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") >= o.ChunkBytes + 64 * 1024);
        // A checkpoint chunk is one frame too; by default a node finds out whether it shares the run directory.
        Assert.True(raw.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") >= o.Storage.ChunkBytes + 64 * 1024);
        Assert.Equal(LiteVae.Actors.Transfer.SharedRunDir.Auto, o.Storage.Shared);
    }

    [Fact]
    public void Set_overrides_ports_seeds_and_pipeline_sizes()
    {
        var o = NodeOptions.Bind(HoconFile.Load(Preset("data-node.conf"),
            ["litevae.node.port=5001", "litevae.node.seed-nodes=[\"10.0.0.5:4053\"]", "litevae.data.decode-workers=8"]));
        Assert.Equal(5001, o.Port);
        Assert.Equal([("10.0.0.5", 4053)], o.Seeds);
        Assert.Equal(8, o.DecodeWorkers);
        // A key a node no longer reads is refused by name, not ignored.
        var e = Assert.Throws<ConfigException>(() => NodeOptions.Bind(HoconFile.Load(Preset("data-node.conf"), ["litevae.data.raw-queue=16"])));
        Assert.Contains("unknown key 'litevae.data.raw-queue'", e.Message);
    }

    [Theory]
    [InlineData("litevae.node.roles=[gpu]", "unknown role 'gpu'")]
    [InlineData("litevae.node.roles=[]", "'litevae.node.roles' is empty")]
    [InlineData("litevae.node.seed-nodes=[\"localhost\"]", "malformed address 'localhost'")]
    [InlineData("litevae.data.decode-workers=-1", "out of range")]
    [InlineData("litevae.storage.shared-run-dir=maybe", "'litevae.storage.shared-run-dir' is 'maybe'; use auto, yes or no")]
    [InlineData("litevae.storage.chunk-kb=8192", "out of range")]
    [InlineData("litevae.storage.chunk=64", "unknown key 'litevae.storage.chunk'")]
    public void Bad_node_settings_name_the_key(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => NodeOptions.Bind(HoconFile.Load(Preset("data-node.conf"), [set])));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:4053", "127.0.0.1", 4053)]
    [InlineData("node-7.lan:80", "node-7.lan", 80)]
    public void Cluster_addresses_parse(string text, string host, int port) =>
        Assert.Equal((host, port), NodeOptions.ParseAddress(text, "--cluster"));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":4053")]
    [InlineData("127.0.0.1:99999")]
    [InlineData("akka.tcp://litevae@127.0.0.1:4053")]
    [InlineData("127.0.0.1:40x3")]
    public void Malformed_cluster_addresses_are_rejected_with_an_example(string text)
    {
        var e = Assert.Throws<ConfigException>(() => NodeOptions.ParseAddress(text, "--cluster"));
        Assert.Contains("expected host:port, e.g. 127.0.0.1:4053", e.Message);
    }
}
