using System.Diagnostics;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Telemetry;
using Microsoft.Extensions.Configuration;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary>Spans leave the process over OTLP and come back from a real backend intact.</summary>
[Collection(OtelCollection.Name)]
public sealed class OtlpExportTests(AspireDashboard backend)
{
    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public async Task ACommandAndTheWorkItStartsArriveAsOneTree(string protocol)
    {
        string endpoint = protocol == "grpc" ? backend.GrpcEndpoint : backend.HttpEndpoint;
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,   // a base URL for both protocols, as users set it
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol,
            ["OTEL_METRICS_EXPORTER"] = "none",
        }).Build();
        using var telemetry = new LiteVaeTelemetry();
        string traceId;
        string runId = Guid.NewGuid().ToString("N");
        using (var session = OtelSession.Start("cli", OtelSettings.From(config), telemetry))
        {
            string traceParent;
            using (var command = OtelSession.StartCommand("eval", telemetry, [new(TelemetryTags.RunId, runId)])!)
            {
                traceId = command.TraceId.ToHexString();
                traceParent = TraceContext.Inject(command)!;
                // The receiving side runs on another thread, as an actor would, with only the string.
                await Task.Run(() =>
                {
                    using var job = telemetry.Eval.StartConsumer("eval job", traceParent, [new(TelemetryTags.JobId, "job-7")]);
                    using var failed = telemetry.Eval.StartActivity("eval batch");
                    failed.Fail("image 3 of shard 2 is not a JPEG");
                });
            }
            session.Flush();
        }

        var spans = await backend.WaitForSpans(all => all.Count(s => s.TraceId == traceId) == 3, TimeSpan.FromSeconds(30));
        var mine = spans.Where(s => s.TraceId == traceId).ToDictionary(s => s.Name);
        var root = mine["litevae eval"];
        var job = mine["eval job"];
        var batch = mine["eval batch"];
        Assert.Null(root.ParentSpanId);
        Assert.Equal(root.SpanId, job.ParentSpanId);
        Assert.Equal(job.SpanId, batch.ParentSpanId);
        Assert.Equal(ExportedSpan.KindClient, root.Kind);
        Assert.Equal(ExportedSpan.KindConsumer, job.Kind);
        Assert.Equal(runId, root.Attr(TelemetryTags.RunId));
        Assert.Equal("job-7", job.Attr(TelemetryTags.JobId));
        Assert.Equal(ExportedSpan.StatusError, batch.StatusCode);
        Assert.Equal("image 3 of shard 2 is not a JPEG", batch.StatusMessage);
        Assert.Equal(LiteVaeTelemetry.ClusterSourceName, root.Scope);
        Assert.Equal(LiteVaeTelemetry.EvalSourceName, job.Scope);
        Assert.All(mine.Values, s => Assert.Equal("litevae-cli", s.Service));
        Assert.True(root.StartNanos <= job.StartNanos && job.EndNanos <= root.EndNanos);
    }
}
