using System.Diagnostics;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Telemetry;
using Microsoft.Extensions.Configuration;
using OpenTelemetry;
using OpenTelemetry.Resources;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary>Tests that start OpenTelemetry providers (process-wide listeners) run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OtelCollection : ICollectionFixture<AspireDashboard>
{
    public const string Name = "otel";
}

[Collection(OtelCollection.Name)]
public sealed class OtelSessionTests
{
    private static OtelSettings Settings(params (string Key, string Value)[] vars) =>
        OtelSettings.From(new ConfigurationBuilder()
            .AddInMemoryCollection(vars.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    [Fact]
    public void WithoutAnEndpointNoProviderListens()
    {
        using var telemetry = new LiteVaeTelemetry();
        using var session = OtelSession.Start("train", Settings(), telemetry);
        Assert.False(session.Tracing);
        Assert.False(session.Metrics);
        Assert.False(telemetry.Train.HasListeners());
        Assert.Null(telemetry.Train.StartActivity("window"));
    }

    [Fact]
    public void ServiceNameDefaultsToLiteVaeRoleAndTheVariablesOverrideIt()
    {
        using (var session = OtelSession.Start("data", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"))))
        {
            var r = Attributes(session);
            Assert.Equal("litevae-data", r["service.name"]);
            Assert.Equal("data", r["litevae.role"]);
            Assert.Equal("litevae", r["service.namespace"]);
            Assert.Equal("opentelemetry", r["telemetry.sdk.name"]);
        }
        using (var session = OtelSession.Start("data", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
                   ("OTEL_SERVICE_NAME", "gpu-box-7"), ("OTEL_RESOURCE_ATTRIBUTES", "litevae.node=n7,litevae.gpu=H100,litevae.role=trainer"))))
        {
            var r = Attributes(session);
            Assert.Equal("gpu-box-7", r["service.name"]);
            Assert.Equal("n7", r["litevae.node"]);
            Assert.Equal("H100", r["litevae.gpu"]);
            Assert.Equal("trainer", r["litevae.role"]);   // the user's attributes win over ours
        }
    }

    [Fact]
    public void TheSamplerComesFromOtelTracesSampler()
    {
        using var telemetry = new LiteVaeTelemetry();
        using (OtelSession.Start("train", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"), ("OTEL_TRACES_SAMPLER", "always_off")), telemetry))
        {
            using var a = telemetry.Train.StartActivity("run");
            Assert.False(a?.Recorded ?? false);
        }
        using (OtelSession.Start("train", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
                   ("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.5")), telemetry))
        {
            int recorded = 0;
            for (int i = 0; i < 400; i++)
            {
                using var a = telemetry.Train.StartActivity("run");
                if (a?.Recorded == true) recorded++;
            }
            Assert.InRange(recorded, 140, 260);   // binomial(400, 0.5): ±6 sigma
        }
        using (OtelSession.Start("train", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")), telemetry))
        {
            using var a = telemetry.Train.StartActivity("run");
            Assert.True(a!.Recorded);   // default: parent-based, always on
        }
    }

    [Fact]
    public void CommandSpanIsAClientRootEvenInsideAnotherSpan()
    {
        using var telemetry = new LiteVaeTelemetry();
        using var session = OtelSession.Start("cli", Settings(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")), telemetry);
        using var outer = telemetry.Train.StartActivity("outer")!;
        using var cmd = OtelSession.StartCommand("eval", telemetry, [new(TelemetryTags.RunId, "r1")])!;
        Assert.Equal("litevae eval", cmd.DisplayName);
        Assert.Equal(ActivityKind.Client, cmd.Kind);
        Assert.Equal(default, cmd.ParentSpanId);
        Assert.Equal("eval", cmd.GetTagItem(TelemetryTags.Command));
        Assert.Equal("r1", cmd.GetTagItem(TelemetryTags.RunId));
    }

    private static Dictionary<string, string> Attributes(OtelSession session) =>
        session.TracerProvider!.GetResource().Attributes.ToDictionary(kv => kv.Key, kv => kv.Value.ToString()!);
}
