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
            // The coordinator's and the eval node's spans are children of the command's span: it ends now that the
            // request is accepted, so while the job runs the backend already has the trace's root (an open root would
            // show as missing in Jaeger for the whole evaluation). The wait is its child, written when it ends.
            string? root = TraceContext.Inject(span);
            span?.Stop();
            span = LiteVaeTelemetry.Default.Cluster.StartFrom("litevae eval wait", System.Diagnostics.ActivityKind.Internal, root,
                [new(TelemetryTags.JobId, job)]);
            using var waiting = span;
            return await Poll(client, job, wait, timeout, quick, span);
        }
        return await Poll(client, job, wait, timeout, quick, span);
    }

    /// <summary>Asks for the job's state until it is done (with --wait) and prints its metrics; <paramref name="span"/>
    /// is marked failed when the evaluation failed.</summary>
    private static async Task<int> Poll(ClusterClient client, string job, bool wait, TimeSpan timeout, TimeSpan quick,
        System.Diagnostics.Activity? span)
    {
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
            {
                var late = new Config.ConfigException($"evaluation {job} still {s.State} after {timeout.TotalSeconds:F0}s; check later with --job {job}.");
                span.Fail(late);
                throw late;
            }
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
