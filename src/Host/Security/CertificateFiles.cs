using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace LiteVae.Host.Security;

/// <summary>Where <c>litevae certs</c> writes things, and with which permissions.</summary>
public static class CertificateFiles
{
    /// <summary>Writes ca.crt (0644) and ca.key (0600) into <paramref name="dir"/> (created 0700 if new).</summary>
    public static (string Cert, string Key) WriteCa(CertificateAuthority ca, string dir, bool force)
    {
        PrivateFile.EnsurePrivateDirectory(dir);
        string cert = Path.Combine(dir, CertificateAuthority.CaCertificateFile), key = Path.Combine(dir, CertificateAuthority.CaKeyFile);
        if (!force && (File.Exists(cert) || File.Exists(key)))
            throw new IOException($"{dir} already holds a cluster CA; a new one would invalidate every certificate it issued. " +
                                  "Pass --force to replace it (then re-issue every node and client certificate).");
        using var privateKey = ca.Certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("the CA has no ECDSA private key");
        PrivateFile.WriteSecret(key, Encoding.ASCII.GetBytes(privateKey.ExportPkcs8PrivateKeyPem() + "\n"));
        PrivateFile.WritePublic(cert, Encoding.ASCII.GetBytes(ca.Certificate.ExportCertificatePem() + "\n"));
        return (cert, key);
    }

    /// <summary>Writes &lt;name&gt;.p12 (certificate + key, 0600) and &lt;name&gt;.crt (certificate, 0644).</summary>
    public static (string Pkcs12, string Cert) WriteIssued(X509Certificate2 issued, string name, string dir, bool force)
    {
        string p12 = Path.Combine(dir, name + ".p12"), cert = Path.Combine(dir, name + ".crt");
        if (!force && (File.Exists(p12) || File.Exists(cert)))
            throw new IOException($"{p12} already exists; pass --force to replace it (the old certificate stays valid until it expires: " +
                                  "to lock its holder out, create a new CA and re-issue).");
        // No password: the file is owner-only (0600), like an ssh key, so nodes can start unattended.
        byte[] bytes = issued.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, "");
        PrivateFile.WriteSecret(p12, bytes);
        PrivateFile.WritePublic(cert, Encoding.ASCII.GetBytes(issued.ExportCertificatePem() + "\n"));
        return (p12, cert);
    }
}
