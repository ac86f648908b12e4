using Akka.Hosting;
using LiteVae.Actors.Security;
using LiteVae.Host.Config;

namespace LiteVae.Host.Security;

/// <summary>
/// Everything a node decides about security at startup, before it listens: TLS on or off (and its
/// certificates loaded and checked), whether its bind address is allowed, and who may send it commands.
/// </summary>
public sealed class NodeSecurity
{
    private NodeSecurity(TlsOptions tls, ClusterTlsIdentity? identity, CommandAuthorizer authorizer)
    {
        Tls = tls;
        Identity = identity;
        Authorizer = authorizer;
    }

    public TlsOptions Tls { get; }
    public ClusterTlsIdentity? Identity { get; }
    public CommandAuthorizer Authorizer { get; }

    /// <summary>The address scheme of this cluster: Akka names TLS addresses akka.ssl.tcp://.</summary>
    public string Scheme => Identity is null ? "akka.tcp" : "akka.ssl.tcp";

    /// <param name="hostname">The address remoting binds to.</param>
    /// <param name="insecure">The user passed --insecure: bind beyond loopback without TLS.</param>
    /// <param name="runDir">Coordinator nodes: the run directory, where the run token lives (created if new).</param>
    public static NodeSecurity Create(HoconFile file, string hostname, bool insecure, string? runDir)
    {
        var tls = TlsOptions.Bind(file);
        BindPolicy.Check(hostname, tls.Enabled, insecure, file.Source);
        if (tls.Enabled)
            return new NodeSecurity(tls, tls.Load(CertificateKind.Node), CommandAuthorizer.TransportAuthenticated());
        var authorizer = runDir is null ? CommandAuthorizer.WithoutToken() : CommandAuthorizer.WithToken(RunToken.Ensure(runDir));
        return new NodeSecurity(tls, null, authorizer);
    }

    /// <summary>Adds the TLS setup (mutual authentication, cluster-CA validation) and switches SSL on.</summary>
    public void Apply(AkkaConfigurationBuilder builder)
    {
        if (Identity is null) return;
        builder.AddSetup(Identity.Setup());
        builder.AddHocon(ClusterTls.EnableSslHocon, HoconAddMode.Prepend);
    }
}
