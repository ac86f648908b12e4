using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae stop --cluster host:port</c>: final checkpoint, then every node leaves and exits.</summary>
internal static class StopCommand
{
    public static Command Create()
    {
        var cluster = ClusterCommandOptions.Cluster();
        var timeout = ClusterCommandOptions.Timeout(300);
        var command = new Command("stop", "Stop a running cluster gracefully: the trainer writes a final checkpoint, then every node leaves");
        command.Options.Add(cluster);
        command.Options.Add(timeout);
        var auth = ClientAuthOptions.AddTo(command);
        Cli.SetAction(command, parse => Run(parse.GetValue(cluster)!, TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse)).GetAwaiter().GetResult());
        return command;
    }

    private static async Task<int> Run(string address, TimeSpan timeout, Security.ClientCredentials credentials)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        var stopped = await client.AskAsync<ClientProtocol.RunStopped>(new ClientProtocol.RequestStop(null), timeout);
        Console.WriteLine($"stopped at step {stopped.Step}; final checkpoint: {stopped.CheckpointPath ?? "none"}");
        return 0;
    }
}
