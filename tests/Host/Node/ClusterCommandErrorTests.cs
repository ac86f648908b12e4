using System.Net;
using System.Net.Sockets;
using LiteVae.Host.Config;
using LiteVae.Host.Node;

namespace LiteVae.Host.Tests.Node;

/// <summary>Commands to a cluster that is not there fail fast with a sentence a user can act on.</summary>
public class ClusterCommandErrorTests
{
    [Fact]
    public async Task An_unreachable_cluster_is_a_clear_error()
    {
        int port = FreePort();
        var e = await Assert.ThrowsAsync<ConfigException>(() => ClusterClient.ConnectAsync($"127.0.0.1:{port}", TimeSpan.FromSeconds(2)));
        Assert.Contains($"cannot reach a LiteVae node at 127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public async Task A_malformed_address_is_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<ConfigException>(() => ClusterClient.ConnectAsync("127.0.0.1", TimeSpan.FromSeconds(2)));
        Assert.Contains("malformed address", e.Message);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
