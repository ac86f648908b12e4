using System.CommandLine;
using LiteVae.Actors.Protocol;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae stop --cluster host:port</c>: final checkpoint, then every node leaves and exits.</summary>
internal static class StopCommand
{
    public static Command Create() => ClusterCommandOptions.Request("stop", "Stop a running cluster gracefully: the trainer writes a final checkpoint, then every node leaves", 300,
        async (client, timeout, traceParent) =>
        {
            var stopped = await client.AskAsync<ClientProtocol.RunStopped>(new ClientProtocol.RequestStop(traceParent), timeout);
            Console.WriteLine($"stopped at step {stopped.Step}; final checkpoint: {stopped.CheckpointPath ?? "none"}");
        });
}
