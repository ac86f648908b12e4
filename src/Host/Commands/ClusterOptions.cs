using System.CommandLine;

namespace LiteVae.Host.Commands;

/// <summary>Options every command to a running cluster shares.</summary>
internal static class ClusterCommandOptions
{
    public static Option<string> Cluster() => new("--cluster")
    {
        Description = "host:port of any node of the running cluster (litevae node prints its address)",
        Required = true,
    };

    public static Option<int> Timeout(int seconds) => new("--timeout")
    {
        Description = "seconds to wait for the answer",
        DefaultValueFactory = _ => seconds,
    };
}
