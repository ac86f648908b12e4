using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae status --cluster host:port</c>: step, img/s, losses, queue depths, members and roles.</summary>
internal static class StatusCommand
{
    public static Command Create() => ClusterCommandOptions.Request("status",
        "Show a running cluster: step, img/s, losses, queue depths, sample accounting, members and roles", 15,
        async (client, timeout) =>
        {
            var status = await client.AskAsync<ClientProtocol.ClusterStatus>(new ClientProtocol.GetClusterStatus(null), timeout);
            Console.Write(StatusFormat.Status(status));
        });
}
