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
    private NodeSecurity(TlsOptions tls, ClusterTlsIdentity? identity)
    {
        Tls = tls;
        Identity = identity;
    }

    public TlsOptions Tls { get; }
    public ClusterTlsIdentity? Identity { get; }

    /// <summary>The address scheme of this cluster: Akka names TLS addresses akka.ssl.tcp://.</summary>
    public string Scheme => SchemeFor(Identity is not null);

    public static string SchemeFor(bool tls) => tls ? "akka.ssl.tcp" : "akka.tcp";

    /// <param name="hostname">The address remoting binds to.</param>
    /// <param name="insecure">The user passed --insecure: bind beyond loopback without TLS.</param>
    public static NodeSecurity Create(HoconFile file, string hostname, bool insecure)
    {
        var tls = TlsOptions.Bind(file);
        BindPolicy.Check(hostname, tls.Enabled, insecure, file.Source);
        return new NodeSecurity(tls, tls.Enabled ? tls.Load(CertificateKind.Node) : null);
    }

    /// <summary>
    /// Who may send commands: with TLS, whoever the transport admitted (a certificate of the cluster CA);
    /// without, holders of the run token, which coordinator nodes keep in the run directory
    /// (<paramref name="runDir"/>, created 0600 on first use); other nodes pass the check on to them.
    /// </summary>
    public CommandAuthorizer Authorizer(string? runDir) =>
        Identity is not null ? CommandAuthorizer.TransportAuthenticated()
        : runDir is null ? CommandAuthorizer.WithoutToken()
        : CommandAuthorizer.WithToken(RunToken.Ensure(runDir));

    /// <summary>Adds the TLS setup (mutual authentication, cluster-CA validation) and switches SSL on.</summary>
    public void Apply(AkkaConfigurationBuilder builder)
    {
        if (Identity is null) return;
        builder.AddSetup(Identity.Setup());
        builder.AddHocon(ClusterTls.EnableSslHocon, HoconAddMode.Prepend);
    }
}
