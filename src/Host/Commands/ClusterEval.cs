using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Node;
using LiteVae.Host.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae eval --cluster host:port …</c>: asks the Coordinator of a running cluster to evaluate one of the
/// run's checkpoints on an eval node (the same <see cref="Evaluation.EvalJob"/> as the standalone eval),
/// then prints the job id, or with --wait the metrics table.
/// </summary>
internal static class ClusterEval
{
    /// <param name="span">The command's span: its traceparent travels with the request, so the coordinator's and
    /// the eval node's spans join this trace.</param>
    public static async Task<int> Run(string address, string checkpoint, string? data, bool wait, string? job, TimeSpan timeout,
        Security.ClientCredentials? credentials = null, System.Diagnostics.Activity? span = null)
    {
        (checkpoint, data) = (AsTyped(checkpoint), data is null || data.Contains("://", StringComparison.Ordinal) ? data : Path.GetFullPath(data));
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        var quick = TimeSpan.FromSeconds(15);
        if (job is null)
        {
            var accepted = await client.AskAsync<ClientProtocol.EvaluationAccepted>(
                new ClientProtocol.RequestEvaluation(checkpoint, data, TraceContext.Inject(span)), quick);
            Console.WriteLine($"evaluation {accepted.JobId} of {accepted.CheckpointPath} accepted");
            span?.SetTag(TelemetryTags.JobId, accepted.JobId);
            span?.SetTag(TelemetryTags.Checkpoint, accepted.CheckpointPath);
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
                if (s.State == EvaluationStatus.Failed) span.Fail($"evaluation {job} failed: {s.Error}");
                return s.State == EvaluationStatus.Failed ? Cli.ExitUserError : 0;
            }
            if (DateTime.UtcNow > deadline)
                throw new Config.ConfigException($"evaluation {job} still {s.State} after {timeout.TotalSeconds:F0}s; check later with --job {job}.");
            await Task.Delay(500);
        }
    }

    /// <summary>
    /// A path means what it meant where it was typed: a relative --checkpoint that exists here is sent absolute.
    /// Anything else (last, step-N, a checkpoint directory named relative to the run directory) is sent as typed
    /// and the coordinator resolves it against the run directory.
    /// </summary>
    private static string AsTyped(string checkpoint) =>
        !Path.IsPathRooted(checkpoint) && checkpoint != "last" && (Directory.Exists(checkpoint) || File.Exists(checkpoint))
            ? Path.GetFullPath(checkpoint)
            : checkpoint;
}
