using System.Security.Cryptography.X509Certificates;
using System.Text;
using Akka.Actor;
using Akka.Remote.Transport.DotNetty;
using LiteVae.Host.Security;
using Xunit.Abstractions;

namespace LiteVae.Host.Tests.Security;

/// <summary>
/// Mutual TLS on real Akka.Remote DotNetty transports over loopback: members need a certificate from
/// the cluster's CA, outsiders (self-signed, another CA's, none at all, plain TCP) are refused by the node
/// with a log line naming them, and nothing crosses the wire in clear.
/// </summary>
public sealed class TlsClusterTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly TestPki _pki = new();

    private DotNettySslSetup Member(string name, CertificateKind kind = CertificateKind.Node) =>
        _pki.Identity(_pki.Issue(name, kind)).Setup();

    /// <summary>What an attacker runs: its own certificate, and it accepts whatever the node presents, so
    /// any refusal we observe is the node's.</summary>
    private static DotNettySslSetup Outsider(string p12, bool presentCertificate = true) =>
        new(X509CertificateLoader.LoadPkcs12FromFile(p12, "", X509KeyStorageFlags.EphemeralKeySet),
            suppressValidation: true, requireMutualAuthentication: presentCertificate);

    [Fact]
    public async Task Nodes_with_certificates_of_the_cluster_CA_form_a_cluster()
    {
        await using var seed = await TestNode.StartSeed(Member("seed"));
        await using var node = TestNode.Start(Member("node"), seed: seed.Address.ToString());
        await TestNode.WaitFor(() => seed.UpMembers == 2 && node.UpMembers == 2, Patience, "two members up");
        Assert.DoesNotContain(seed.Log, l => l.Contains("TLS: refused"));
    }

    [Theory]
    [InlineData("self-signed")]
    [InlineData("foreign-ca")]
    public async Task A_node_with_a_self_signed_or_foreign_CA_certificate_cannot_join(string kind)
    {
        await using var seed = await TestNode.StartSeed(Member("seed"));
        string p12 = kind == "self-signed" ? _pki.SelfSigned("intruder") : _pki.IssueForeign("intruder");
        await using var intruder = TestNode.Start(Outsider(p12), seed: seed.Address.ToString());

        await TestNode.WaitFor(() => seed.Logged("TLS: refused connection from"), Patience, "the seed to log the refusal");
        await Task.Delay(TimeSpan.FromSeconds(3));   // several join attempts (retry every second)
        Assert.Equal(1, seed.UpMembers);
        Assert.Equal(0, intruder.UpMembers);
        var line = seed.Log.First(l => l.Contains("TLS: refused connection from"));
        Assert.Contains("not signed by this cluster's CA", line);
        Assert.Contains("127.0.0.1", line);   // the peer is named
        Assert.Contains("CN=intruder", line);
        output.WriteLine(line);
    }

    [Fact]
    public async Task A_client_with_a_client_certificate_reaches_a_node_actor()
    {
        await using var node = await TestNode.StartSeed(Member("node"));
        await using var client = TestNode.Start(Member("alice", CertificateKind.Client), cluster: false, name: "litevae-cli");
        var reply = await client.System.ActorSelection($"{node.Address}/user/recorder").Ask<string>("stop", Patience);
        Assert.Equal("ack:stop", reply);
        Assert.Contains("stop", node.Received);
    }

    [Theory]
    [InlineData("no-certificate")]
    [InlineData("plain-tcp")]
    [InlineData("foreign-ca")]
    public async Task A_client_without_a_valid_certificate_cannot_send_stop(string kind)
    {
        await using var node = await TestNode.StartSeed(Member("node"));
        var setup = kind switch
        {
            "no-certificate" => Outsider(_pki.SelfSigned("own-listener"), presentCertificate: false),
            "foreign-ca" => Outsider(_pki.IssueForeign("mallory")),
            _ => null,   // plain TCP: no TLS at all
        };
        await using var client = TestNode.Start(setup, cluster: false, name: "litevae-cli");

        // A plain-TCP client speaks akka.tcp:// to the TLS node's host and port (a TLS node's address is akka.ssl.tcp://).
        string target = setup is null ? $"akka.tcp://{TestNode.SystemName}@{node.Address.Host}:{node.Address.Port}" : node.Address.ToString();
        var ask = client.System.ActorSelection($"{target}/user/recorder").Ask<string>("stop", TimeSpan.FromSeconds(4));
        await Assert.ThrowsAsync<AskTimeoutException>(() => ask);
        Assert.Empty(node.Received);
        string expected = kind switch
        {
            "no-certificate" => "did not provide a certificate from",   // Akka's own check, before ours
            "foreign-ca" => "not signed by this cluster's CA",
            _ => "TLS",
        };
        await TestNode.WaitFor(() => node.Logged(expected), Patience, $"the node to log '{expected}'");
        Assert.Contains(node.Log, l => l.Contains(expected) && l.Contains("127.0.0.1"));
        output.WriteLine(node.Log.First(l => l.Contains(expected)));
        Assert.Equal(1, node.UpMembers);   // and it carries on
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Traffic_between_TLS_nodes_carries_no_plaintext(bool tls)
    {
        const string marker = "LITEVAE-PLAINTEXT-MARKER-7f3a9c";
        int realPort = TestNode.FreePort();
        await using var tap = new TapProxy(realPort);
        // The seed listens on realPort but tells everyone to use the tap's port, so all traffic to it crosses the tap.
        await using var seed = await TestNode.StartSeed(tls ? Member("seed") : null, port: realPort, publicPort: tap.Port);
        await using var node = TestNode.Start(tls ? Member("node") : null, seed: seed.Address.ToString());
        await TestNode.WaitFor(() => seed.UpMembers == 2 && node.UpMembers == 2, Patience, "two members up");

        var reply = await node.System.ActorSelection($"{seed.Address}/user/recorder").Ask<string>(marker, Patience);
        Assert.Equal("ack:" + marker, reply);

        byte[] wire = tap.Captured();
        Assert.True(wire.Length > 1000, $"the tap saw only {wire.Length} bytes");
        bool utf8 = wire.AsSpan().IndexOf(Encoding.UTF8.GetBytes(marker)) >= 0;
        bool utf16 = wire.AsSpan().IndexOf(Encoding.Unicode.GetBytes(marker)) >= 0;
        if (tls)
            Assert.False(utf8 || utf16, "the marker crossed the wire in clear text under TLS");
        else
            Assert.True(utf8 || utf16, "control: without TLS the tap must see the marker, else this test could not detect plaintext");
    }

    public void Dispose() => _pki.Dispose();
}
