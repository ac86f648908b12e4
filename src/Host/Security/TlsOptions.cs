using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LiteVae.Actors.Security;
using LiteVae.Host.Config;

namespace LiteVae.Host.Security;

/// <summary>
/// <c>litevae.tls { enabled, ca-certificate, certificate }</c> of a node's HOCON (hocon/tls.conf), or the
/// <c>--tls-ca/--tls-cert</c> options of a CLI command. Relative paths resolve against the directory
/// the process runs in.
/// </summary>
public sealed record TlsOptions(bool Enabled, string CaCertificate, string Certificate, string Source)
{
    public static readonly TlsOptions Off = new(false, "", "", "defaults");

    public static TlsOptions Bind(HoconFile f)
    {
        bool enabled = f.Bool("litevae.tls.enabled", false);
        string ca = f.String("litevae.tls.ca-certificate", ""), cert = f.String("litevae.tls.certificate", "");
        if (enabled && (ca == "" || cert == ""))
            throw new ConfigException($"{f.Source}: litevae.tls.enabled = on needs both 'litevae.tls.ca-certificate' (the cluster's ca.crt) " +
                                      "and 'litevae.tls.certificate' (this node's <name>.p12); create them with `litevae certs init` and `litevae certs issue <name>`.");
        return new TlsOptions(enabled, ca, cert, f.Source);
    }

    /// <summary>
    /// Loads and checks this process's certificate and the cluster CA before anything listens, so a wrong
    /// file is one clear error at startup instead of handshakes that fail later. A node needs a node
    /// certificate (it serves and connects); a CLI client needs any certificate of the cluster.
    /// </summary>
    public ClusterTlsIdentity Load(CertificateKind role)
    {
        var ca = LoadCa(CaCertificate, Source);
        X509Certificate2 own;
        var bytes = PrivateFile.ReadSecret(Certificate, "TLS certificate + private key (PKCS#12)");
        try { own = X509CertificateLoader.LoadPkcs12(bytes, "", X509KeyStorageFlags.EphemeralKeySet); }
        catch (CryptographicException e)
        {
            throw new ConfigException($"{Certificate}: not a readable PKCS#12 file ({e.Message}); point it at the <name>.p12 that `litevae certs issue` wrote (not the .crt).");
        }
        if (!own.HasPrivateKey)
            throw new ConfigException($"{Certificate}: holds no private key; use the .p12 file `litevae certs issue` wrote, not the .crt.");
        var validator = new ClusterCertificateValidator(ca);
        var sides = role == CertificateKind.Node
            ? new[] { ClusterCertificateValidator.PeerSide.Server, ClusterCertificateValidator.PeerSide.Client }
            : new[] { ClusterCertificateValidator.PeerSide.Client };
        foreach (var side in sides)
        {
            string? problem = validator.Check(own, side);
            if (problem is not null)
                throw new ConfigException($"{Certificate}: other members would refuse this certificate: {problem.Replace("its ", "")} " +
                                          $"(checked against {CaCertificate}).{(role == CertificateKind.Node ? " A node needs a certificate from `litevae certs issue <name>` without --client." : "")}");
        }
        return new ClusterTlsIdentity(own, ca);
    }

    public static X509Certificate2 LoadCa(string path, string source)
    {
        if (!File.Exists(path))
            throw new ConfigException($"{source}: cluster CA certificate '{path}' not found; copy ca.crt from the machine where you ran `litevae certs init`.");
        X509Certificate2 ca;
        try { ca = X509CertificateLoader.LoadCertificateFromFile(path); }
        catch (CryptographicException e) { throw new ConfigException($"{path}: not a certificate ({e.Message})."); }
        if (!CertificateAuthority.IsCa(ca))
            throw new ConfigException($"{path}: not a CA certificate; point ca-certificate at the ca.crt from `litevae certs init`.");
        return ca;
    }
}

/// <summary>This process's certificate (with key) and the CA it and its peers must chain to.</summary>
public sealed record ClusterTlsIdentity(X509Certificate2 Certificate, X509Certificate2 Ca)
{
    public Akka.Remote.Transport.DotNetty.DotNettySslSetup Setup() => ClusterTls.Setup(Certificate, Ca);
}
