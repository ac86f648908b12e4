namespace LiteVae.Host.Security;

/// <summary>
/// What a CLI command presents to a cluster: a client certificate (clusters with TLS) or the run token
/// (loopback clusters without TLS), from --tls-ca/--tls-cert, --token or --run-dir.
/// </summary>
public sealed record ClientCredentials(ClusterTlsIdentity? Tls, string? Token)
{
    public static readonly ClientCredentials None = new(null, null);

    public static ClientCredentials From(string? tlsCa, string? tlsCert, string? token, string? runDir)
    {
        if ((tlsCa is null) != (tlsCert is null))
            throw new ArgumentException("--tls-ca and --tls-cert go together: the cluster's ca.crt and your <name>.p12 from `litevae certs issue <name> --client`.");
        if (token is not null && runDir is not null)
            throw new ArgumentException("pass either --token or --run-dir, not both.");
        var tls = tlsCa is null ? null : new TlsOptions(true, tlsCa, tlsCert!, "the command line").Load(CertificateKind.Client);
        string? t = token ?? (runDir is null ? null : RunToken.Read(runDir));
        return new ClientCredentials(tls, t);
    }
}
