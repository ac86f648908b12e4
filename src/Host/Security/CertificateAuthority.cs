using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using LiteVae.Actors.Security;

namespace LiteVae.Host.Security;

/// <summary>What a certificate lets its holder do in the cluster.</summary>
public enum CertificateKind
{
    /// <summary>A cluster node: accepts connections (server) and opens them (client).</summary>
    Node,
    /// <summary>A CLI user: may connect to nodes and send commands, but is never accepted as a server.</summary>
    Client,
}

/// <summary>
/// The cluster's own certificate authority: a self-signed ECDSA P-256 CA whose only job is to sign the
/// certificates of this cluster's nodes and clients. Nodes accept a TLS peer only if its certificate
/// chains to this CA (<see cref="ClusterCertificateValidator"/>), so holding <c>ca.key</c> is holding the
/// cluster: it stays on the machine where certificates are issued. Everything uses
/// System.Security.Cryptography; no openssl, no external tools.
/// </summary>
public sealed partial class CertificateAuthority : IDisposable
{
    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";
    public static readonly TimeSpan DefaultCaValidity = TimeSpan.FromDays(3650);
    public static readonly TimeSpan DefaultLeafValidity = TimeSpan.FromDays(825);

    private CertificateAuthority(X509Certificate2 certificate) => Certificate = certificate;

    /// <summary>The CA certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public static CertificateAuthority Create(string clusterName, DateTimeOffset now, TimeSpan validity)
    {
        ValidateName(clusterName, "cluster name");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(
            new X500DistinguishedName($"CN=LiteVae cluster CA {clusterName}, O=LiteVae"), key, HashAlgorithmName.SHA256);
        // pathLen 0: this CA signs end-entity certificates only, never another CA.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        // Back-date a little so a peer whose clock is a few minutes behind still accepts a fresh certificate.
        var cert = request.CreateSelfSigned(now.AddMinutes(-10), now + validity);
        return new CertificateAuthority(cert);
    }

    /// <summary>Loads <c>ca.crt</c> + <c>ca.key</c> from <paramref name="dir"/> (the key must be owner-only).</summary>
    public static CertificateAuthority Load(string dir)
    {
        string certPath = Path.Combine(dir, CaCertificateFile), keyPath = Path.Combine(dir, CaKeyFile);
        if (!File.Exists(certPath))
            throw new FileNotFoundException($"{certPath}: no cluster CA here; create one with `litevae certs init --dir {dir}`.", certPath);
        string keyPem = System.Text.Encoding.ASCII.GetString(PrivateFile.ReadSecret(keyPath, "the cluster CA's private key"));
        X509Certificate2 cert;
        try { cert = X509Certificate2.CreateFromPem(File.ReadAllText(certPath), keyPem); }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"{certPath} / {keyPath}: not a matching PEM certificate and private key ({e.Message}).");
        }
        if (!IsCa(cert))
        {
            cert.Dispose();
            throw new InvalidDataException($"{certPath}: not a CA certificate (no CA basic constraint).");
        }
        return new CertificateAuthority(cert);
    }

    /// <summary>
    /// Issues a certificate for a node or a client. Node certificates carry serverAuth + clientAuth and
    /// the given host names / IP addresses as subject alternative names; client certificates carry
    /// clientAuth only, so no node ever accepts a client's certificate as a server.
    /// </summary>
    public X509Certificate2 Issue(string name, CertificateKind kind, IReadOnlyList<string> hosts, DateTimeOffset now, TimeSpan validity)
    {
        ValidateName(name, "certificate name");
        if (now + validity > Certificate.NotAfter)
            validity = Certificate.NotAfter - now;   // a leaf never outlives its CA
        if (validity <= TimeSpan.Zero)
            throw new InvalidOperationException($"the cluster CA expired on {Certificate.NotAfter:yyyy-MM-dd}; create a new one with `litevae certs init --force`.");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string unit = kind == CertificateKind.Node ? "node" : "client";
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}, OU={unit}, O=LiteVae"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        var usages = new OidCollection { ClusterCertificateValidator.ClientAuth };
        if (kind == CertificateKind.Node) usages.Add(ClusterCertificateValidator.ServerAuth);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        if (kind == CertificateKind.Node)
        {
            var san = new SubjectAlternativeNameBuilder();
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var host in hosts)
            {
                if (!names.Add(host)) continue;
                if (IPAddress.TryParse(host, out var ip)) san.AddIpAddress(ip);
                else if (HostName().IsMatch(host)) san.AddDnsName(host);
                else throw new ArgumentException($"--host '{host}' is neither an IP address nor a host name.");
            }
            // The certificate's name doubles as a DNS name when it is one (node-a.example.org).
            if (!names.Contains(name) && !IPAddress.TryParse(name, out _) && HostName().IsMatch(name)) san.AddDnsName(name);
            request.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;   // a positive serial number, as RFC 5280 asks
        using var issued = request.Create(Certificate, now.AddMinutes(-10), now + validity, serial);
        return issued.CopyWithPrivateKey(key);
    }

    public static bool IsCa(X509Certificate2 cert) =>
        cert.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);

    private static void ValidateName(string name, string what)
    {
        if (!SafeName().IsMatch(name))
            throw new ArgumentException($"{what} '{name}' must be 1-64 characters of letters, digits, '.', '-' or '_' (it becomes a file name).");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex SafeName();

    [GeneratedRegex("^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostName();

    public void Dispose() => Certificate.Dispose();
}
