using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Security;
using static LiteVae.Actors.Protocol.ClientProtocol;

namespace LiteVae.Actors.Gateway;

/// <summary>
/// <c>/user/gateway</c> on every node: where <c>litevae status|eval|checkpoint|stop --cluster</c> send
/// their commands (a remote-only client system resolves it by ActorSelection). It admits a command only
/// when the <see cref="CommandAuthorizer"/> does (mutual TLS, or the run token of a loopback cluster),
/// checks its sizes, forwards it to the Coordinator singleton wherever it lives and turns silence into a
/// clear <see cref="CommandRejected"/>. Every refusal is also a warning in this node's log naming the peer.
/// </summary>
public sealed class Gateway : ReceiveActor
{
    public const string Name = "gateway";

    /// <summary>Commands waiting for the Coordinator's answer; more are refused as busy (bounded work per client flood).</summary>
    public const int MaxInFlight = 32;

    private readonly IActorRef _coordinator;
    private readonly TimeSpan _quick;
    private readonly TimeSpan _slow;
    private readonly CommandAuthorizer _authorizer;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ActorSystem _system = Context.System;   // the fallback runs outside the actor's context
    private int _inFlight;

    public Gateway(IActorRef coordinator, TimeSpan quick, TimeSpan slow, CommandAuthorizer authorizer)
    {
        (_coordinator, _quick, _slow, _authorizer) = (coordinator, quick, slow, authorizer);
        Receive<AuthorizedCommand>(HandleAuthorized);
        Receive<Completed>(_ => _inFlight--);
        Receive<ILiteVaeMessage>(m => AuthorizedCommand.ClientCommands.Contains(m.GetType()), m =>
        {
            if (_authorizer.AcceptsUnsigned) Handle(m, Sender);
            else Refuse(Sender, AuthorizedCommand.CommandName(m), CommandAuthorizer.RefusalReason);
        });
    }

    public static Props Props(IActorRef coordinator, TimeSpan quick, TimeSpan slow, CommandAuthorizer authorizer) =>
        Akka.Actor.Props.Create(() => new Gateway(coordinator, quick, slow, authorizer));

    private sealed record Completed;

    private void HandleAuthorized(AuthorizedCommand envelope)
    {
        var client = Sender;
        var (command, problem) = envelope.Unwrap(_system);
        if (command is null)
        {
            Refuse(client, "command", problem!);
            return;
        }
        switch (_authorizer.Check(envelope.Token))
        {
            case CommandAuthorizer.Verdict.Allowed:
                Handle(command, client);
                break;
            case CommandAuthorizer.Verdict.Refused:
                Refuse(client, AuthorizedCommand.CommandName(command), "not authorized: the run token does not match this cluster's " +
                                                                   "(pass --run-dir <the run directory of this cluster> or the token in its run-token file).");
                break;
            default:
                // This node does not hold the token (only coordinator nodes read the run directory): let the
                // gateway of the oldest coordinator node, the one running the Coordinator, decide.
                var judge = OldestCoordinatorNode();
                if (judge is null)
                    Refuse(client, AuthorizedCommand.CommandName(command),
                        $"no node with role '{ClusterRoles.Coordinator}' is up to check the run token; send the command to the coordinator node");
                else
                    _system.ActorSelection(new RootActorPath(judge) / "user" / Name).Tell(envelope, client);
                break;
        }
    }

    private Address? OldestCoordinatorNode()
    {
        var cluster = Cluster.Get(_system);
        var oldest = cluster.State.Members.Where(m => m.Status == MemberStatus.Up && m.HasRole(ClusterRoles.Coordinator))
            .Aggregate((Member?)null, (a, m) => a is null || m.IsOlderThan(a) ? m : a);
        return oldest is null || oldest.Address == cluster.SelfAddress ? null : oldest.Address;
    }

    private void Handle(ILiteVaeMessage command, IActorRef client)
    {
        string name = AuthorizedCommand.CommandName(command);
        if (CommandLimits.Problem(command) is { } tooBig)
        {
            Refuse(client, name, tooBig);
            return;
        }
        if (_inFlight >= MaxInFlight)
        {
            Refuse(client, name, $"this node is already handling {MaxInFlight} commands; try again in a moment");
            return;
        }
        switch (command)
        {
            case GetClusterStatus: Forward(command, client, name, _quick, fallback: MembersOnly); break;
            case RequestCheckpoint or RequestStop: Forward(command, client, name, _slow); break;
            default: Forward(command, client, name, _quick); break;
        }
    }

    private void Refuse(IActorRef client, string command, string reason)
    {
        _log.Warning("refused '{0}' from {1}: {2}", command, Peer(client), reason);
        client.Tell(new CommandRejected(command, reason));
    }

    private static string Peer(IActorRef client) =>
        client.Path.Address.HasGlobalScope ? client.Path.Address.ToString() : "this process";

    private void Forward(object message, IActorRef client, string command, TimeSpan timeout, Func<object>? fallback = null)
    {
        _inFlight++;
        var self = Self;
        var log = _log;
        _coordinator.Ask<object>(message, timeout).ContinueWith(t =>
        {
            self.Tell(new Completed());
            object reply = t.IsCompletedSuccessfully ? t.Result : fallback?.Invoke() ?? new CommandRejected(command,
                $"the coordinator did not answer within {timeout.TotalSeconds:F0}s; is a node with role '{ClusterRoles.Coordinator}' up? " +
                "(litevae status --cluster … lists the members)");
            if (reply is CommandRejected r)
                log.Warning("refused '{0}' from {1}: {2}", r.Command, Peer(client), r.Reason);
            client.Tell(reply);
        }, TaskScheduler.Default);
    }

    /// <summary>Status without a coordinator: at least the members, so the user sees what is missing.</summary>
    private object MembersOnly()
    {
        var cluster = Cluster.Get(_system);
        var unreachable = cluster.State.Unreachable.Select(m => m.Address).ToHashSet();
        var members = cluster.State.Members
            .Select(m => new MemberInfo(m.Address.ToString(), m.Status.ToString(), m.Roles.Order().ToList(), !unreachable.Contains(m.Address)))
            .ToList();
        return new ClusterStatus("no-coordinator", "", 0, 0, 0, 0, new Dictionary<string, double>(), [], members, [],
            new DataAccounting(0, 0, 0, 0, 0, 0, new Dictionary<string, long>()), []);
    }
}

/// <summary>Bounds on what a client command may carry (strings are checked before anything acts on them).</summary>
public static class CommandLimits
{
    public const int MaxTraceParent = 128, MaxJobId = 128;

    public static string? Problem(ILiteVaeMessage command)
    {
        if (command is ITraced { TraceParent: { Length: > MaxTraceParent } })
            return $"trace context longer than {MaxTraceParent} characters";
        return command switch
        {
            RequestEvaluation { Checkpoint.Length: > PathPolicy.MaxPathChars } =>
                $"--checkpoint is longer than {PathPolicy.MaxPathChars} characters",
            RequestEvaluation { Data.Length: > PathPolicy.MaxPathChars } => $"--data is longer than {PathPolicy.MaxPathChars} characters",
            GetEvaluation { JobId.Length: > MaxJobId } => $"job id longer than {MaxJobId} characters",
            _ => null,
        };
    }
}
