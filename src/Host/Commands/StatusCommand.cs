using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae status --cluster host:port [--json]</c>: step, img/s, losses, queue depths, members and roles.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print the status as one JSON object (for scripts and supervisors) instead of the table" };
        return ClusterCommandOptions.Request("status",
            "Show a running cluster: step, img/s, losses, queue depths, sample accounting, members and roles", 15,
            async (client, timeout, traceParent, parse) =>
            {
                var status = await client.AskAsync<ClientProtocol.ClusterStatus>(new ClientProtocol.GetClusterStatus(traceParent), timeout);
                Console.Write(parse.GetValue(json) ? StatusFormat.Json(status) + "\n" : StatusFormat.Status(status));
            }, json);
    }
}
