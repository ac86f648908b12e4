using Akka.Actor;

namespace LiteVae.Host.Node;

/// <summary>
/// How a node process ended, as its exit code, so a supervisor (systemd, Kubernetes) can tell a clean stop
/// from a node it must restart. The README's cluster section lists them with what to do about each.
/// </summary>
public static class NodeExit
{
    /// <summary>Stopped cleanly: `litevae stop`, Ctrl+C / SIGTERM (after the final checkpoint), or the run's budget spent.</summary>
    public const int Stopped = 0;
    /// <summary>The run stopped on an error (bad data, a trainer that cannot start, a NaN guard), or a config error at start.</summary>
    public const int Failed = 1;
    /// <summary>The cluster removed this node (the split-brain resolver downed it: it was on the minority side,
    /// or unreachable too long). Restart it: it joins again through its seed nodes or Cluster Bootstrap.</summary>
    public const int Downed = 3;
    /// <summary>It could not join any seed node in time. Check the seed addresses and that a seed is up, then restart it.</summary>
    public const int JoinFailed = 4;

    /// <param name="runFailed">The run this node coordinated (or trained) ended on an error.</param>
    public static int Code(CoordinatedShutdown.Reason? reason, bool runFailed) => reason switch
    {
        CoordinatedShutdown.ClusterDowningReason => Downed,
        CoordinatedShutdown.ClusterJoinUnsuccessfulReason => JoinFailed,
        _ when runFailed => Failed,
        _ => Stopped,
    };
}
