using System.CommandLine;

namespace LiteVae.Host.Commands;

/// <summary>The tracing flag of the long-running verbs (train, node, launch, eval, shards pack) and of every verb that
/// talks to a running cluster (status, checkpoint, stop, eval --cluster).</summary>
internal static class TelemetryOptions
{
    public static Option<string?> Otlp() => new("--otlp")
    {
        Description = "export traces and metrics over OTLP to this URL, e.g. http://localhost:4317 (a shortcut for " +
                      "OTEL_EXPORTER_OTLP_ENDPOINT; every other OTEL_* variable applies as usual)",
    };
}
