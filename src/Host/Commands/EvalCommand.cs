using System.CommandLine;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Node;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae eval --cluster host:port --checkpoint last|step-N|path [--data shards] [--wait]</c>: runs an
/// evaluation on an eval node of a running cluster while training goes on.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var cluster = ClusterCommandOptions.Cluster();
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "last, step-N, or a checkpoint directory of the run",
            DefaultValueFactory = _ => "last",
        };
        var data = new Option<string?>("--data") { Description = "evaluation shards (default: the experiment's eval set)" };
        var wait = new Option<bool>("--wait") { Description = "wait for the job and print the metrics table (otherwise print the job id)" };
        var job = new Option<string?>("--job") { Description = "show the state of an earlier job instead of starting one" };
        var timeout = ClusterCommandOptions.Timeout(1800);
        var command = new Command("eval", "Evaluate a checkpoint on an eval node of a running cluster (--cluster) while training goes on");
        foreach (var o in new Option[] { cluster, checkpoint, data, wait, job, timeout })
            command.Options.Add(o);
        var auth = ClientAuthOptions.AddTo(command);
        Cli.SetAction(command, parse => Run(parse.GetValue(cluster)!, parse.GetValue(checkpoint)!, parse.GetValue(data), parse.GetValue(wait),
            parse.GetValue(job), TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse)).GetAwaiter().GetResult());
        return command;
    }

    public static async Task<int> Run(string address, string checkpoint, string? data, bool wait, string? job, TimeSpan timeout,
        Security.ClientCredentials? credentials = null)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        var quick = TimeSpan.FromSeconds(15);
        if (job is null)
        {
            var accepted = await client.AskAsync<ClientProtocol.EvaluationAccepted>(new ClientProtocol.RequestEvaluation(checkpoint, data, null), quick);
            Console.WriteLine($"evaluation {accepted.JobId} of {accepted.CheckpointPath} accepted");
            if (!wait) return 0;
            job = accepted.JobId;
        }
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var s = await client.AskAsync<EvaluationStatus>(new ClientProtocol.GetEvaluation(job), quick);
            if (s.State is EvaluationStatus.Done or EvaluationStatus.Failed || !wait)
            {
                Console.Write(StatusFormat.Metrics(s));
                return s.State == EvaluationStatus.Failed ? Cli.ExitUserError : 0;
            }
            if (DateTime.UtcNow > deadline)
                throw new Config.ConfigException($"evaluation {job} still {s.State} after {timeout.TotalSeconds:F0}s; check later with --job {job}.");
            await Task.Delay(500);
        }
    }
}
