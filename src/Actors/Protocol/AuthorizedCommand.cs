using Akka.Actor;
using LiteVae.Actors.Serialization;

namespace LiteVae.Actors.Protocol;

/// <summary>
/// A client command wrapped with the run token (clusters without TLS). The command travels as its own
/// wire form (manifest + bytes) so the gateway can check the token and the size BEFORE decoding anything,
/// and can accept only client commands inside (never an internal message smuggled past it).
/// <see cref="ToString"/> hides the token so it never reaches a log line.
/// </summary>
public sealed record AuthorizedCommand(string Token, string Manifest, byte[] Payload) : ILiteVaeMessage
{
    /// <summary>The largest command a client may send (a path or two and a trace id fit in a few hundred bytes).</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    /// <summary>The commands a client may wrap (see <see cref="ClientProtocol"/>).</summary>
    public static readonly IReadOnlySet<Type> ClientCommands = new HashSet<Type>
    {
        typeof(ClientProtocol.GetClusterStatus), typeof(ClientProtocol.RequestEvaluation), typeof(ClientProtocol.GetEvaluation),
        typeof(ClientProtocol.RequestCheckpoint), typeof(ClientProtocol.RequestStop),
    };

    public static AuthorizedCommand Wrap(ActorSystem system, string token, ILiteVaeMessage command)
    {
        if (!ClientCommands.Contains(command.GetType()))
            throw new ArgumentException($"{command.GetType().Name} is not a client command.");
        var serializer = new LiteVaeSerializer((ExtendedActorSystem)system);
        byte[] bytes = serializer.ToBinary(command);
        if (bytes.Length > MaxPayloadBytes)
            throw new CommandTooLargeException(CommandName(command), bytes.Length);
        return new AuthorizedCommand(token, serializer.Manifest(command), bytes);
    }

    /// <summary>The wrapped command, or an explanation of why it is not acceptable.</summary>
    public (ILiteVaeMessage? Command, string? Problem) Unwrap(ActorSystem system)
    {
        if (Payload.Length > MaxPayloadBytes)
            return (null, $"the command is {Payload.Length} bytes; at most {MaxPayloadBytes} are accepted");
        if (!Manifests.ByManifest.TryGetValue(Manifest ?? "", out var type) || !ClientCommands.Contains(type))
            return (null, $"'{Manifest}' is not a client command");
        try
        {
            return ((ILiteVaeMessage)new LiteVaeSerializer((ExtendedActorSystem)system).FromBinary(Payload, Manifest!), null);
        }
        catch (Exception e)
        {
            return (null, $"the command could not be decoded ({e.GetType().Name})");
        }
    }

    public static string CommandName(object command) => command switch
    {
        ClientProtocol.GetClusterStatus => "status",
        ClientProtocol.RequestEvaluation or ClientProtocol.GetEvaluation => "eval",
        ClientProtocol.RequestCheckpoint => "checkpoint",
        ClientProtocol.RequestStop => "stop",
        _ => command.GetType().Name,
    };

    public bool Equals(AuthorizedCommand? o) =>
        o is not null && Token == o.Token && Manifest == o.Manifest && Payload.AsSpan().SequenceEqual(o.Payload);

    public override int GetHashCode() => HashCode.Combine(Manifest, Payload.Length);

    public override string ToString() => $"AuthorizedCommand({Manifest}, {Payload?.Length ?? 0} bytes, token hidden)";
}

/// <summary>A command larger than <see cref="AuthorizedCommand.MaxPayloadBytes"/>, refused before it is sent.</summary>
public sealed class CommandTooLargeException(string command, int bytes)
    : Exception($"{command}: the command is {bytes} bytes; at most {AuthorizedCommand.MaxPayloadBytes} are accepted (are the paths in it that long?).");
