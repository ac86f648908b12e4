using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LiteVae.Actors.Security;
using LiteVae.Host.Config;
using LiteVae.Host.Security;
using Side = LiteVae.Actors.Security.ClusterCertificateValidator.PeerSide;

namespace LiteVae.Host.Tests.Security;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
/// <summary>`litevae certs` output: signatures, usages, names, file modes; and what the validator accepts.</summary>
public sealed class CertificateTests : IDisposable
{
    private readonly TestPki _pki = new();

    private X509Certificate2 Load(string p12) => X509CertificateLoader.LoadPkcs12FromFile(p12, "", X509KeyStorageFlags.EphemeralKeySet);

    private ClusterCertificateValidator Validator(DateTime? now = null) =>
        new(X509CertificateLoader.LoadCertificateFromFile(_pki.CaPath), now is null ? null : () => now.Value);

    /// <summary>Checks the CA's ECDSA signature over the TBSCertificate bytes directly (RFC 5280 §4.1),
    /// independent of X509Chain.</summary>
    private static bool SignedBy(X509Certificate2 cert, X509Certificate2 ca)
    {
        var outer = new AsnReader(cert.RawData, AsnEncodingRules.DER).ReadSequence();
        var tbs = outer.ReadEncodedValue();
        outer.ReadSequence();   // signatureAlgorithm
        byte[] signature = outer.ReadBitString(out _);
        using var key = ca.GetECDsaPublicKey()!;
        return key.VerifyData(tbs.Span, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    private static IEnumerable<string> Usages(X509Certificate2 c) =>
        c.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value!);

    [Fact]
    public void Issued_certificates_are_signed_by_the_CA_and_carry_the_usages_of_their_kind()
    {
        using var ca = X509CertificateLoader.LoadCertificateFromFile(_pki.CaPath);
        using var node = Load(_pki.Issue("node-a"));
        using var client = Load(_pki.Issue("alice", CertificateKind.Client));
        using var foreign = Load(_pki.IssueForeign("node-b"));

        Assert.True(SignedBy(node, ca));
        Assert.True(SignedBy(client, ca));
        Assert.False(SignedBy(foreign, ca));   // the signature check itself can fail
        Assert.True(node.HasPrivateKey && client.HasPrivateKey);
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], Usages(node).Order());
        Assert.Equal(["1.3.6.1.5.5.7.3.2"], Usages(client));
        Assert.False(node.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        var ext = ca.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(ext.CertificateAuthority && ext.HasPathLengthConstraint && ext.PathLengthConstraint == 0);
        var san = node.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Contains("node-a", san.EnumerateDnsNames());
        Assert.Contains(System.Net.IPAddress.Loopback, san.EnumerateIPAddresses());
        Assert.NotEqual(node.SerialNumber, client.SerialNumber);
    }

    [Fact]
    public void Keys_are_owner_only_and_certificates_public()
    {
        string p12 = _pki.Issue("node-a");
        Assert.Equal(PrivateFile.OwnerOnly, File.GetUnixFileMode(Path.Combine(_pki.Dir, CertificateAuthority.CaKeyFile)));
        Assert.Equal(PrivateFile.OwnerOnly, File.GetUnixFileMode(p12));
        Assert.Equal(PrivateFile.PublicRead, File.GetUnixFileMode(_pki.CaPath));
        Assert.Equal(PrivateFile.PublicRead, File.GetUnixFileMode(Path.ChangeExtension(p12, ".crt")));

        string fresh = Path.Combine(_pki.Dir, "fresh");
        using var ca = CertificateAuthority.Create("x", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        CertificateFiles.WriteCa(ca, fresh, force: false);
        Assert.Equal(PrivateFile.OwnerOnlyDirectory, File.GetUnixFileMode(fresh));
    }

    [Fact]
    public void An_existing_CA_or_certificate_is_not_overwritten_without_force()
    {
        var e = Assert.Throws<IOException>(() => CertificateFiles.WriteCa(_pki.Ca, _pki.Dir, force: false));
        Assert.Contains("--force", e.Message);
        _pki.Issue("node-a");
        Assert.Throws<IOException>(() => _pki.Issue("node-a"));
    }

    [Fact]
    public void A_CA_key_readable_by_others_is_refused_with_the_fix()
    {
        File.SetUnixFileMode(Path.Combine(_pki.Dir, CertificateAuthority.CaKeyFile), PrivateFile.PublicRead);
        var e = Assert.Throws<UnauthorizedAccessException>(() => CertificateAuthority.Load(_pki.Dir));
        Assert.Contains("chmod 600", e.Message);
    }

    [Theory]
    [InlineData("../evil")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData(".hidden")]
    public void Names_that_are_not_plain_file_names_are_refused(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => _pki.Ca.Issue(name, CertificateKind.Node, [], DateTimeOffset.UtcNow, TimeSpan.FromDays(1)));
        Assert.Contains("letters, digits", e.Message);
    }

    [Fact]
    public void A_leaf_never_outlives_its_CA()
    {
        using var cert = _pki.Ca.Issue("long", CertificateKind.Node, [], DateTimeOffset.UtcNow, TimeSpan.FromDays(10_000));
        Assert.True(cert.NotAfter <= _pki.Ca.Certificate.NotAfter);
    }

    [Fact]
    public void Validator_accepts_cluster_nodes_on_both_sides_and_clients_only_as_clients()
    {
        var v = Validator();
        using var node = Load(_pki.Issue("node-a"));
        using var client = Load(_pki.Issue("alice", CertificateKind.Client));
        Assert.Null(v.Check(node, Side.Server));
        Assert.Null(v.Check(node, Side.Client));
        Assert.Null(v.Check(client, Side.Client));
        Assert.Contains("not a node certificate", v.Check(client, Side.Server));
    }

    [Fact]
    public void Validator_refuses_outsiders_expired_certificates_and_the_CA_itself()
    {
        var v = Validator();
        using var foreign = Load(_pki.IssueForeign("node-b"));
        using var self = Load(_pki.SelfSigned("node-c"));
        using var ca = X509CertificateLoader.LoadCertificateFromFile(_pki.CaPath);
        foreach (var side in new[] { Side.Server, Side.Client })
        {
            Assert.Contains("not signed by this cluster's CA", v.Check(foreign, side));
            Assert.Contains("not signed by this cluster's CA", v.Check(self, side));
            Assert.Contains("CA certificate itself", v.Check(ca, side));
        }
        using var node = Load(_pki.Issue("node-a"));
        Assert.Contains("expired", Validator(DateTime.Now.AddDays(3)).Check(node, Side.Client));
        Assert.Contains("not yet valid", Validator(DateTime.Now.AddDays(-3)).Check(node, Side.Client));
    }

    [Fact]
    public void Tls_options_fail_at_startup_with_a_clear_reason()
    {
        string node = _pki.Issue("node-a"), client = _pki.Issue("alice", CertificateKind.Client), foreign = _pki.IssueForeign("node-b");
        TlsOptions Opt(string cert) => new(true, _pki.CaPath, cert, "test.conf");

        Assert.True(Opt(node).Load(CertificateKind.Node).Certificate.HasPrivateKey);
        Assert.NotNull(Opt(client).Load(CertificateKind.Client));
        Assert.Contains("without --client", Assert.Throws<ConfigException>(() => Opt(client).Load(CertificateKind.Node)).Message);
        Assert.Contains("not signed by this cluster's CA", Assert.Throws<ConfigException>(() => Opt(foreign).Load(CertificateKind.Node)).Message);
        Assert.Contains("not a readable PKCS#12 file",
            Assert.Throws<ConfigException>(() => new TlsOptions(true, _pki.CaPath, WriteSecretCopy(Path.ChangeExtension(node, ".crt")), "t").Load(CertificateKind.Node)).Message);
        Assert.Contains("not a CA certificate",
            Assert.Throws<ConfigException>(() => new TlsOptions(true, Path.ChangeExtension(node, ".crt"), node, "t").Load(CertificateKind.Node)).Message);
        File.SetUnixFileMode(node, PrivateFile.PublicRead);
        Assert.Contains("chmod 600", Assert.Throws<UnauthorizedAccessException>(() => Opt(node).Load(CertificateKind.Node)).Message);
        var hocon = HoconFile.Parse("litevae.tls { enabled = on, ca-certificate = \"ca.crt\" }", "node.conf");
        Assert.Contains("litevae.tls.certificate", Assert.Throws<ConfigException>(() => TlsOptions.Bind(hocon)).Message);
    }

    private string WriteSecretCopy(string path)
    {
        string copy = path + ".copy";
        PrivateFile.WriteSecret(copy, File.ReadAllBytes(path));
        return copy;
    }

    public void Dispose() => _pki.Dispose();
}
