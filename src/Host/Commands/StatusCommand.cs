using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae status --cluster host:port</c>: step, img/s, losses, queue depths, members and roles.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var cluster = ClusterCommandOptions.Cluster();
        var timeout = ClusterCommandOptions.Timeout(15);
        var command = new Command("status", "Show a running cluster: step, img/s, losses, queue depths, sample accounting, members and roles");
        command.Options.Add(cluster);
        command.Options.Add(timeout);
        var auth = ClientAuthOptions.AddTo(command);
        Cli.SetAction(command, parse => Run(parse.GetValue(cluster)!, TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse)).GetAwaiter().GetResult());
        return command;
    }

    private static async Task<int> Run(string address, TimeSpan timeout, Security.ClientCredentials credentials)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        var status = await client.AskAsync<ClientProtocol.ClusterStatus>(new ClientProtocol.GetClusterStatus(null), timeout);
        Console.Write(StatusFormat.Status(status));
        return 0;
    }
}
