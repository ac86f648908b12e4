using System.Security.Cryptography.X509Certificates;
using Akka.Remote.Transport.DotNetty;

namespace LiteVae.Actors.Security;

/// <summary>
/// Mutual TLS for Akka.Remote's DotNetty transport, set up the one way that lets us decide who is
/// trusted: a <see cref="DotNettySslSetup"/> (which takes precedence over any HOCON <c>ssl</c> block)
/// carrying this process's certificate, <c>require-mutual-authentication</c> (both sides present a
/// certificate, a peer without one is refused by the transport) and our own
/// <see cref="ClusterCertificateValidator"/> instead of the system trust store. Hostname checks stay off:
/// identity is "signed by the cluster CA", not a DNS name (nodes are often reached by IP or behind NAT).
/// HOCON must also say <c>enable-ssl = on</c> (<see cref="EnableSslHocon"/>); the setup alone does not.
/// </summary>
public static class ClusterTls
{
    public const string EnableSslHocon = "akka.remote.dot-netty.tcp.enable-ssl = on";

    public static DotNettySslSetup Setup(X509Certificate2 own, X509Certificate2 clusterCa) =>
        new(own, suppressValidation: false, requireMutualAuthentication: true, validateCertificateHostname: false,
            customValidator: new ClusterCertificateValidator(clusterCa).Callback);
}
