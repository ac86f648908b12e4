using System.CommandLine;
using LiteVae.Actors.Protocol;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae checkpoint --cluster host:port</c>: write a checkpoint now (training goes on).</summary>
internal static class CheckpointCommand
{
    public static Command Create() => ClusterCommandOptions.Request("checkpoint", "Ask a running cluster to write a checkpoint now; prints its directory", 300,
        async (client, timeout, traceParent) =>
        {
            var saved = await client.AskAsync<CheckpointEvents.CheckpointSaved>(new ClientProtocol.RequestCheckpoint(traceParent), timeout);
            Console.WriteLine($"checkpoint step {saved.Step}: {saved.Path}");
        });
}
