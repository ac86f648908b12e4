using LiteVae.Host.Config;
using Microsoft.Extensions.Configuration;

namespace LiteVae.Host.Telemetry;

/// <summary>
/// What the standard <c>OTEL_*</c> variables ask for, decided once at start. LiteVae reads no
/// telemetry settings of its own: endpoint, protocol, headers, timeouts, service name, resource
/// attributes, sampler and export interval all keep their OpenTelemetry meaning, and the SDK itself
/// reads them from <see cref="Configuration"/>. Nothing is exported unless an endpoint is set.
/// </summary>
public sealed record OtelSettings(bool Traces, bool Metrics, IConfiguration Configuration)
{
    public const string Endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string TracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    public const string MetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
    public const string Protocol = "OTEL_EXPORTER_OTLP_PROTOCOL";
    public const string TracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    public const string MetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
    public const string ServiceName = "OTEL_SERVICE_NAME";
    public const string ResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES";
    public const string SdkDisabled = "OTEL_SDK_DISABLED";
    public const string TracesExporter = "OTEL_TRACES_EXPORTER";
    public const string MetricsExporter = "OTEL_METRICS_EXPORTER";

    public bool Any => Traces || Metrics;

    /// <summary>The process environment, with <c>--otlp &lt;url&gt;</c> standing in for
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (it wins over the variable, as a flag should).</summary>
    public static IConfiguration FromEnvironment(string? otlp)
    {
        var builder = new ConfigurationBuilder().AddEnvironmentVariables();
        if (!string.IsNullOrWhiteSpace(otlp))
            builder.AddInMemoryCollection([new(Endpoint, CheckUrl(otlp, "--otlp"))]);
        return builder.Build();
    }

    /// <summary>Decides which signals to export; bad values fail here, naming the variable.</summary>
    public static OtelSettings From(IConfiguration config)
    {
        foreach (var key in new[] { Endpoint, TracesEndpoint, MetricsEndpoint })
            if (Value(config, key) is { } url)
                CheckUrl(url, key);
        foreach (var key in new[] { Protocol, TracesProtocol, MetricsProtocol })
            if (Value(config, key) is { } p && p is not ("grpc" or "http/protobuf"))
                throw new ConfigException($"{key}='{p}': use grpc (port 4317) or http/protobuf (port 4318).");

        bool disabled = Value(config, SdkDisabled)?.Equals("true", StringComparison.OrdinalIgnoreCase) == true;
        bool general = Value(config, Endpoint) is not null;
        return new OtelSettings(
            Traces: !disabled && Exporter(config, TracesExporter) && (general || Value(config, TracesEndpoint) is not null),
            Metrics: !disabled && Exporter(config, MetricsExporter) && (general || Value(config, MetricsEndpoint) is not null),
            config);
    }

    private static bool Exporter(IConfiguration config, string key) =>
        Value(config, key) switch
        {
            null or "otlp" => true,
            "none" => false,
            var other => throw new ConfigException($"{key}='{other}': LiteVae exports OTLP only; use otlp or none."),
        };

    private static string? Value(IConfiguration config, string key) =>
        config[key] is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

    private static string CheckUrl(string url, string name)
    {
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ConfigException($"{name}='{url}': expected an http(s) URL such as http://localhost:4317 " +
                                      "(OTLP gRPC) or http://localhost:4318 with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.");
        return url.Trim();
    }
}
