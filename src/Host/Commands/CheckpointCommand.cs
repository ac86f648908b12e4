using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae checkpoint --cluster host:port</c>: write a checkpoint now (training goes on).</summary>
internal static class CheckpointCommand
{
    public static Command Create()
    {
        var cluster = ClusterCommandOptions.Cluster();
        var timeout = ClusterCommandOptions.Timeout(300);
        var command = new Command("checkpoint", "Ask a running cluster to write a checkpoint now; prints its directory");
        command.Options.Add(cluster);
        command.Options.Add(timeout);
        var auth = ClientAuthOptions.AddTo(command);
        Cli.SetAction(command, parse => Run(parse.GetValue(cluster)!, TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse)).GetAwaiter().GetResult());
        return command;
    }

    private static async Task<int> Run(string address, TimeSpan timeout, Security.ClientCredentials credentials)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        var saved = await client.AskAsync<CheckpointEvents.CheckpointSaved>(new ClientProtocol.RequestCheckpoint(null), timeout);
        Console.WriteLine($"checkpoint step {saved.Step}: {saved.Path}");
        return 0;
    }
}
