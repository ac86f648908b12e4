using Akka.Actor;
using Akka.Cluster;
using LiteVae.Actors.Protocol;
using static LiteVae.Actors.Protocol.ClientProtocol;

namespace LiteVae.Actors.Gateway;

/// <summary>
/// <c>/user/gateway</c> on every node: where <c>litevae status|eval|checkpoint|stop --cluster</c> send
/// their commands (a remote-only client system resolves it by ActorSelection). It forwards to the
/// Coordinator singleton wherever it lives and turns silence into a clear <see cref="CommandRejected"/>.
/// </summary>
public sealed class Gateway : ReceiveActor
{
    public const string Name = "gateway";

    private readonly IActorRef _coordinator;
    private readonly TimeSpan _quick;
    private readonly TimeSpan _slow;
    private readonly ActorSystem _system = Context.System;   // the fallback runs outside the actor's context

    public Gateway(IActorRef coordinator, TimeSpan quick, TimeSpan slow)
    {
        (_coordinator, _quick, _slow) = (coordinator, quick, slow);
        Receive<GetClusterStatus>(m => Forward(m, "status", _quick, fallback: MembersOnly));
        Receive<RequestEvaluation>(m => Forward(m, "eval", _quick));
        Receive<GetEvaluation>(m => Forward(m, "eval", _quick));
        Receive<RequestCheckpoint>(m => Forward(m, "checkpoint", _slow));
        Receive<RequestStop>(m => Forward(m, "stop", _slow));
    }

    public static Props Props(IActorRef coordinator, TimeSpan quick, TimeSpan slow) =>
        Akka.Actor.Props.Create(() => new Gateway(coordinator, quick, slow));

    private void Forward(object message, string command, TimeSpan timeout, Func<object>? fallback = null)
    {
        var client = Sender;
        _coordinator.Ask<object>(message, timeout).PipeTo(client, success: r => r, failure: _ => fallback?.Invoke() ??
            new CommandRejected(command,
                $"the coordinator did not answer within {timeout.TotalSeconds:F0}s; is a node with role '{ClusterRoles.Coordinator}' up? " +
                "(litevae status --cluster … lists the members)"));
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
            new DataAccounting(0, 0, 0, 0, 0, 0, 0, 0), []);
    }
}
