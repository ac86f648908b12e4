using System.Security.Cryptography;
using System.Text;

namespace LiteVae.Actors.Security;

/// <summary>
/// Decides whether a client command may run. With TLS the transport already admitted only holders of a
/// cluster certificate, so every command that arrives is authorized. Without TLS (loopback only), the
/// command must carry the run token; a node that does not know the token (not a coordinator node) passes
/// the decision on to one that does.
/// </summary>
public sealed class CommandAuthorizer
{
    public enum Verdict { Allowed, Refused, AskCoordinatorNode }

    private readonly byte[]? _token;

    private CommandAuthorizer(bool tls, string? token, bool inProcess = false)
    {
        Tls = tls;
        _inProcess = inProcess;
        _token = token is null ? null : Encoding.UTF8.GetBytes(token);
    }

    private readonly bool _inProcess;

    public bool Tls { get; }

    /// <summary>
    /// Whether commands may come without the envelope: with TLS (the transport admitted only certificate
    /// holders) or in a test that runs everything in one process. Never decided from the sender's address:
    /// a remote peer can claim any sender path it likes.
    /// </summary>
    public bool AcceptsUnsigned => Tls || _inProcess;

    /// <summary>For actors wired up in one process without remoting (tests): everything is trusted.</summary>
    public static CommandAuthorizer InProcess() => new(false, null, inProcess: true);

    /// <summary>Mutual TLS is on: the peer proved it holds a certificate of the cluster CA.</summary>
    public static CommandAuthorizer TransportAuthenticated() => new(true, null);

    /// <summary>No TLS; this node knows the run token.</summary>
    public static CommandAuthorizer WithToken(string token) =>
        string.IsNullOrEmpty(token) ? throw new ArgumentException("empty run token") : new(false, token);

    /// <summary>No TLS, and this node does not know the token.</summary>
    public static CommandAuthorizer WithoutToken() => new(false, null);

    public Verdict Check(string? presented)
    {
        if (Tls || _inProcess) return Verdict.Allowed;
        if (_token is null) return Verdict.AskCoordinatorNode;
        if (string.IsNullOrEmpty(presented) || presented.Length > 256) return Verdict.Refused;
        // Constant time: how much of a guess matched must not show in how long the answer takes.
        return CryptographicOperations.FixedTimeEquals(_token, Encoding.UTF8.GetBytes(presented)) ? Verdict.Allowed : Verdict.Refused;
    }

    public const string RefusalReason =
        "not authorized: this cluster runs without TLS, so commands must carry its run token. " +
        "Pass --run-dir <the run directory> (the CLI reads <run-dir>/run-token) or --token <token>.";
}
