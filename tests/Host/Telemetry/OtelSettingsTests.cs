using LiteVae.Host.Config;
using LiteVae.Host.Telemetry;
using Microsoft.Extensions.Configuration;

namespace LiteVae.Host.Tests.Telemetry;

public sealed class OtelSettingsTests
{
    private static OtelSettings From(params (string Key, string Value)[] vars) =>
        OtelSettings.From(new ConfigurationBuilder()
            .AddInMemoryCollection(vars.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    [Fact]
    public void NothingIsExportedWithoutAnEndpoint()
    {
        var s = From(("OTEL_SERVICE_NAME", "x"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_TRACES_SAMPLER", "always_on"));
        Assert.False(s.Traces);
        Assert.False(s.Metrics);
        Assert.False(From(("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")).Any);
    }

    [Fact]
    public void TheGeneralEndpointTurnsOnBothSignalsAndPerSignalEndpointsOnlyTheirOwn()
    {
        var both = From(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317"));
        Assert.True(both.Traces && both.Metrics);
        var traces = From(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://jaeger:4318/v1/traces"));
        Assert.True(traces.Traces);
        Assert.False(traces.Metrics);
        var metrics = From(("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://collector:4318/v1/metrics"));
        Assert.False(metrics.Traces);
        Assert.True(metrics.Metrics);
    }

    [Fact]
    public void ExporterNoneAndSdkDisabledAreHonoured()
    {
        var s = From(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"), ("OTEL_METRICS_EXPORTER", "none"));
        Assert.True(s.Traces);
        Assert.False(s.Metrics);
        Assert.False(From(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"), ("OTEL_SDK_DISABLED", "TRUE")).Any);
    }

    [Theory]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", "http(s) URL")]
    [InlineData("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://h:4317", "http(s) URL")]
    [InlineData("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "grpc (port 4317) or http/protobuf")]
    [InlineData("OTEL_TRACES_EXPORTER", "zipkin", "otlp or none")]
    public void BadValuesFailNamingTheVariable(string key, string value, string advice)
    {
        var e = Assert.Throws<ConfigException>(() => From((key, value)));
        Assert.StartsWith($"{key}='{value}'", e.Message);
        Assert.Contains(advice, e.Message);
    }

    [Fact]
    public void OtlpFlagStandsInForTheEndpointVariable()
    {
        var config = OtelSettings.FromEnvironment("http://127.0.0.1:4317");
        Assert.Equal("http://127.0.0.1:4317", config["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        Assert.True(OtelSettings.From(config).Traces);
        var e = Assert.Throws<ConfigException>(() => OtelSettings.FromEnvironment("127.0.0.1:4317"));
        Assert.StartsWith("--otlp='127.0.0.1:4317'", e.Message);
    }
}
