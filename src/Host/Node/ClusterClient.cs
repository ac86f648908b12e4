using System.Net;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using LiteVae.Actors;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Serialization;
using LiteVae.Host.Config;
using LiteVae.Host.Security;

namespace LiteVae.Host.Node;

/// <summary>
/// How the CLI talks to a running cluster: a short-lived, remote-only ActorSystem (it never joins the
/// cluster, so no membership churn and no split-brain decisions) that resolves <c>/user/gateway</c> on the
/// given node by ActorSelection. Every node runs a gateway that forwards to the Coordinator singleton,
/// so any member's address works. (ClusterClient + receptionist would add contact-point failover, which a
/// one-shot command does not need, and is deprecated upstream.)
/// </summary>
public sealed class ClusterClient : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _gateway;

    public string Address { get; }

    private readonly string? _token;

    private ClusterClient(ActorSystem system, IActorRef gateway, string address, string? token) =>
        (_system, _gateway, Address, _token) = (system, gateway, address, token);

    /// <param name="credentials">A client certificate (cluster with TLS) or the run token (loopback cluster without).</param>
    public static async Task<ClusterClient> ConnectAsync(string address, TimeSpan timeout, ClientCredentials? credentials = null)
    {
        var creds = credentials ?? ClientCredentials.None;
        var (host, port) = NodeOptions.ParseAddress(address, "--cluster");
        await ProbeTcp(host, port, address, timeout);
        string bind = IsLoopback(host) ? "127.0.0.1" : Dns.GetHostName();
        bool tls = creds.Tls is not null;
        var config = ConfigurationFactory.ParseString($$"""
            akka {
              loglevel = ERROR
              stdout-loglevel = OFF
              log-dead-letters = off
              log-dead-letters-during-shutdown = off
              actor.provider = remote
              remote.dot-netty.tcp { hostname = "{{bind}}", port = 0, maximum-frame-size = 4194304b, enable-ssl = {{(tls ? "on" : "off")}} }
              remote.log-remote-lifecycle-events = off
            }
            """).WithFallback(ConfigurationFactory.ParseString(SerializationSetup.Hocon));
        var bootstrap = BootstrapSetup.Create().WithConfig(config);
        var system = ActorSystem.Create("litevae-cli", tls ? ActorSystemSetup.Create(bootstrap, creds.Tls!.Setup()) : ActorSystemSetup.Create(bootstrap));
        try
        {
            var selection = system.ActorSelection($"{NodeSecurity.SchemeFor(tls)}://{ClusterRoles.SystemName}@{host}:{port}/user/{Actors.Gateway.Gateway.Name}");
            ActorIdentity id;
            try { id = await selection.Ask<ActorIdentity>(new Identify(address), timeout); }
            catch (AskTimeoutException)
            {
                throw new ConfigException($"cannot reach a LiteVae node at {address}: nothing answered within {timeout.TotalSeconds:F0}s " +
                                          (tls
                                              ? "(the TLS handshake may have been refused: is your --tls-cert issued by this cluster's CA, and does the cluster run TLS? The node logs refused peers.)"
                                              : "(is the node running, and is this its host:port? `litevae node` prints it at start; a cluster with TLS needs --tls-ca and --tls-cert)."));
            }
            // Akka answers an Identify it could not deliver (a refused TLS handshake, a plain client at a TLS
            // node) from its dead letters, like a missing actor: say both.
            if (id.Subject is null)
                throw new ConfigException($"no LiteVae gateway answered at {address}: " + (tls
                    ? "the node refused the connection (is your --tls-cert issued by this cluster's CA? the node logs refused peers) or it is not a LiteVae node."
                    : "it is not a LiteVae node, or the cluster runs TLS: then pass --tls-ca <ca.crt> and --tls-cert <your .p12 from `litevae certs issue <name> --client`>."));
            return new ClusterClient(system, id.Subject, address, creds.Token);
        }
        catch
        {
            await system.Terminate();
            throw;
        }
    }

    /// <summary>Akka answers an unreachable address like a missing actor; a plain TCP connect tells them apart.</summary>
    private static async Task ProbeTcp(string host, int port, string address, TimeSpan timeout)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        using var cts = new CancellationTokenSource(timeout);
        try { await tcp.ConnectAsync(host, port, cts.Token); }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            string why = e is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:F0}s" : e.Message;
            throw new ConfigException($"cannot reach a LiteVae node at {address}: {why} " +
                                      "(is the node running, and is this its host:port? `litevae node` prints it at start).");
        }
    }

    private static bool IsLoopback(string host) =>
        host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Sends a command and waits for its answer (a CommandRejected becomes an error naming the reason).</summary>
    /// <remarks>With a run token the command travels wrapped with it (see <see cref="AuthorizedCommand"/>); either
    /// way a command larger than <see cref="AuthorizedCommand.MaxPayloadBytes"/> is refused here, before sending.</remarks>
    public async Task<T> AskAsync<T>(ILiteVaeMessage command, TimeSpan timeout)
    {
        object reply;
        object message = _token is null ? CheckSize(command) : AuthorizedCommand.Wrap(_system, _token, command);
        try { reply = await _gateway.Ask<object>(message, timeout); }
        catch (AskTimeoutException)
        {
            throw new ConfigException($"{Address} did not answer within {timeout.TotalSeconds:F0}s (the cluster may be busy or the node gone).");
        }
        return reply switch
        {
            T t => t,
            Actors.Protocol.ClientProtocol.CommandRejected r => throw new ConfigException($"{r.Command}: {r.Reason}"),
            _ => throw new ConfigException($"{Address} answered with an unexpected {reply.GetType().Name}."),
        };
    }

    private ILiteVaeMessage CheckSize(ILiteVaeMessage command)
    {
        int bytes = new LiteVaeSerializer((ExtendedActorSystem)_system).ToBinary(command).Length;
        return bytes <= AuthorizedCommand.MaxPayloadBytes ? command : throw new CommandTooLargeException(AuthorizedCommand.CommandName(command), bytes);
    }

    public async ValueTask DisposeAsync() => await _system.Terminate();
}
