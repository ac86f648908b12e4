using System.Diagnostics;
using LiteVae.Actors.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LiteVae.Host.Telemetry;

/// <summary>
/// The process's OpenTelemetry providers, one tracer and one meter provider, exporting OTLP as the
/// <c>OTEL_*</c> variables say. Disposing it flushes what is buffered and shuts the exporters down,
/// so a verb wraps its whole run in <c>using</c>. With no endpoint set no provider exists, nothing
/// listens to LiteVae's sources, and tracing costs a null check per span.
/// </summary>
public sealed class OtelSession : IDisposable
{
    private readonly TracerProvider? _tracer;
    private readonly MeterProvider? _meter;

    private OtelSession(TracerProvider? tracer, MeterProvider? meter, string serviceName)
    {
        _tracer = tracer;
        _meter = meter;
        ServiceName = serviceName;
    }

    public bool Tracing => _tracer is not null;
    public bool Metrics => _meter is not null;

    /// <summary>The default service name (<c>litevae-&lt;role&gt;</c>); OTEL_SERVICE_NAME overrides it.</summary>
    public string ServiceName { get; }

    internal TracerProvider? TracerProvider => _tracer;
    internal MeterProvider? MeterProvider => _meter;

    /// <summary>Starts export for a process of <paramref name="role"/> (e.g. <c>train</c>, <c>cli</c>,
    /// <c>coordinator-data</c>), configured from the environment and <c>--otlp</c>.</summary>
    public static OtelSession Start(string role, string? otlp, LiteVaeTelemetry? telemetry = null) =>
        Start(role, OtelSettings.From(OtelSettings.FromEnvironment(otlp)), telemetry);

    public static OtelSession Start(string role, OtelSettings settings, LiteVaeTelemetry? telemetry = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        string service = $"litevae-{role}";
        telemetry ??= LiteVaeTelemetry.Default;
        TracerProvider? tracer = null;
        MeterProvider? meter = null;
        if (settings.Traces)
        {
            tracer = Sdk.CreateTracerProviderBuilder()
                .ConfigureServices(s => s.AddSingleton(settings.Configuration))
                .ConfigureResource(r => Resource(r, service, role))
                .AddSource([.. LiteVaeTelemetry.SourceNames])
                .AddOtlpExporter()
                .Build();
        }
        if (settings.Metrics)
        {
            meter = Sdk.CreateMeterProviderBuilder()
                .ConfigureServices(s => s.AddSingleton(settings.Configuration))
                .ConfigureResource(r => Resource(r, service, role))
                .AddMeter(telemetry.Meter.Name)
                .AddOtlpExporter()
                .Build();
        }
        return new OtelSession(tracer, meter, service);
    }

    /// <summary>
    /// The resource: our defaults first, then what OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say,
    /// so a user's variables win (later attributes override earlier ones when a resource is built).
    /// </summary>
    private static void Resource(ResourceBuilder r, string service, string role) =>
        r.Clear()
            .AddService(service, serviceNamespace: "litevae", serviceInstanceId: $"{Environment.MachineName}:{Environment.ProcessId}")
            .AddAttributes([new(TelemetryTags.Role, role)])
            .AddTelemetrySdk()
            .AddEnvironmentVariableDetector();

    /// <summary>Sends everything buffered now (before a process exits abnormally, or in tests).</summary>
    public void Flush(int timeoutMs = 10_000)
    {
        _tracer?.ForceFlush(timeoutMs);
        _meter?.ForceFlush(timeoutMs);
    }

    public void Dispose()
    {
        _tracer?.Dispose();
        _meter?.Dispose();
    }

    /// <summary>
    /// The span of a CLI command (<c>litevae eval</c>, <c>litevae train</c> ...): the root of the trace
    /// its messages carry. Always a root, whatever ran before in this process.
    /// </summary>
    public static Activity? StartCommand(string command, LiteVaeTelemetry? telemetry = null,
        IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        var t = telemetry ?? LiteVaeTelemetry.Default;
        var all = new List<KeyValuePair<string, object?>> { new(TelemetryTags.Command, command) };
        if (tags is not null) all.AddRange(tags);
        return t.Cluster.StartLinkedRoot($"litevae {command}", ActivityKind.Client, [], all);
    }
}
