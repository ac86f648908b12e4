using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace LiteVae.Actors.Security;

/// <summary>
/// Decides, during every TLS handshake of Akka.Remote's DotNetty transport, whether the peer's
/// certificate belongs to this cluster: it must chain to the cluster's own CA and nothing else (the
/// operating system's trust store is not consulted, so a certificate from any public or foreign CA, or a
/// self-signed one, is refused), be within its validity period, and carry the usage for its side of the
/// connection: a peer we connect to must be a node (serverAuth); a peer connecting to us may be a node or
/// a CLI client (clientAuth). Every refusal is logged with the peer's address and the reason.
/// </summary>
public sealed class ClusterCertificateValidator
{
    public static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", "Server Authentication");
    public static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    private readonly X509Certificate2 _ca;
    private readonly Func<DateTime> _now;

    public ClusterCertificateValidator(X509Certificate2 ca, Func<DateTime>? now = null)
    {
        if (!ca.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority))
            throw new ArgumentException($"'{ca.Subject}' is not a CA certificate.", nameof(ca));
        _ca = ca;
        _now = now ?? (() => DateTime.Now);
    }

    /// <summary>The peer is the server we connected to, or a client that connected to us.</summary>
    public enum PeerSide { Server, Client }

    /// <summary>The callback Akka's <see cref="DotNettySslSetup"/> invokes on both sides of every connection.</summary>
    public CertificateValidationCallback Callback => Validate;

    private bool Validate(X509Certificate2? certificate, X509Chain? chain, string remotePeer, SslPolicyErrors errors, ILoggingAdapter log)
    {
        // Akka names the peer of an outbound connection by its actor-system address (akka.tcp://…) and the
        // peer of an inbound one by its socket address: that is how we know which side we are on.
        var side = remotePeer.StartsWith("akka", StringComparison.Ordinal) ? PeerSide.Server : PeerSide.Client;
        string? reason = certificate is null ? "it presented no certificate" : Check(certificate, side);
        if (reason is null) return true;
        log.Warning("TLS: refused {0} {1}: {2}{3}", side == PeerSide.Client ? "connection from" : "connection to", remotePeer, reason,
            certificate is null ? "" : $" [subject '{certificate.Subject}', issuer '{certificate.Issuer}', thumbprint {certificate.Thumbprint}]");
        return false;
    }

    /// <summary>Null when <paramref name="certificate"/> is acceptable for a peer on <paramref name="side"/>; else why not.</summary>
    public string? Check(X509Certificate2 certificate, PeerSide side)
    {
        if (certificate.RawDataMemory.Span.SequenceEqual(_ca.RawDataMemory.Span))
            return "it presented the CA certificate itself, which is not a node or client certificate";
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;   // the cluster CA is the only root
        policy.CustomTrustStore.Add(_ca);
        policy.RevocationMode = X509RevocationMode.NoCheck;       // the cluster CA publishes no CRL; re-key to revoke
        policy.DisableCertificateDownloads = true;
        policy.VerificationTime = _now();
        policy.ApplicationPolicy.Add(side == PeerSide.Server ? ServerAuth : ClientAuth);
        if (!chain.Build(certificate))
        {
            var status = chain.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (a, b) => a | b);
            return Explain(status, side, chain);
        }
        var root = chain.ChainElements[^1].Certificate;
        if (chain.ChainElements.Count != 2 || !root.RawDataMemory.Span.SequenceEqual(_ca.RawDataMemory.Span))
            return "its chain does not end at the cluster CA in one step";
        return null;
    }

    private static string Explain(X509ChainStatusFlags status, PeerSide side, X509Chain chain)
    {
        if ((status & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
            return "its certificate is not signed by this cluster's CA (self-signed, or issued by another CA)";
        if ((status & X509ChainStatusFlags.NotTimeValid) != 0)
            return "its certificate is expired or not yet valid (check the clocks, or issue a new one)";
        if ((status & (X509ChainStatusFlags.NotValidForUsage | X509ChainStatusFlags.InvalidExtension)) != 0)
            return side == PeerSide.Server
                ? "its certificate is not a node certificate (no serverAuth usage; a --client certificate cannot serve)"
                : "its certificate does not allow client authentication";
        if ((status & X509ChainStatusFlags.NotSignatureValid) != 0)
            return "its certificate's signature is invalid";
        return "its certificate chain is invalid: " + string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
    }
}
