using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LiteVae.Host.Security;

namespace LiteVae.Host.Tests.Security;

/// <summary>
/// A throw-away cluster PKI in a temp folder, written with the same code `litevae certs` uses, plus the
/// certificates an attacker could bring: self-signed ones and ones from another cluster's CA.
/// </summary>
public sealed class TestPki : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("litevae-pki-").FullName;
    public CertificateAuthority Ca { get; }
    public string CaPath => Path.Combine(Dir, CertificateAuthority.CaCertificateFile);

    public TestPki()
    {
        Ca = CertificateAuthority.Create("test", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        CertificateFiles.WriteCa(Ca, Dir, force: false);
    }

    /// <summary>Issues a certificate and writes it as &lt;name&gt;.p12 (0600); returns its path.</summary>
    public string Issue(string name, CertificateKind kind = CertificateKind.Node)
    {
        using var cert = Ca.Issue(name, kind, ["127.0.0.1", "localhost"], DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        return CertificateFiles.WriteIssued(cert, name, Dir, force: false).Pkcs12;
    }

    /// <summary>A node certificate signed by some other cluster's CA (same names, same usages).</summary>
    public string IssueForeign(string name)
    {
        using var foreign = CertificateAuthority.Create("foreign", DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        using var cert = foreign.Issue(name, CertificateKind.Node, ["127.0.0.1", "localhost"], DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        return CertificateFiles.WriteIssued(cert, name, Dir, force: false).Pkcs12;
    }

    /// <summary>A self-signed certificate with node usages and the same subject a real node would have.</summary>
    public string SelfSigned(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, OU=node, O=LiteVae", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            new OidCollection { new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2") }, false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return CertificateFiles.WriteIssued(cert, name, Dir, force: false).Pkcs12;
    }

    /// <summary>Loads a .p12 as a process would, keeping the cluster CA as its trust root.</summary>
    public ClusterTlsIdentity Identity(string p12) =>
        new(X509CertificateLoader.LoadPkcs12FromFile(p12, "", X509KeyStorageFlags.EphemeralKeySet),
            X509CertificateLoader.LoadCertificateFromFile(CaPath));

    public void Dispose()
    {
        Ca.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
