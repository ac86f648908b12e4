using LiteVae.Actors.Telemetry;
using LiteVae.Data.Shards;
using LiteVae.Host.Commands;
using SkiaSharp;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary><c>shards pack --otlp</c>: the command's span reaches a real backend with what it did.</summary>
[Collection(OtelCollection.Name)]
public sealed class ShardsPackTraceTests(AspireDashboard backend) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("litevae-pack-trace-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task PackExportsOneCommandSpanWithCountsAndPrintsPlainProgressLines()
    {
        string input = Directory.CreateDirectory(Path.Combine(_dir, "images")).FullName;
        for (int i = 0; i < 6; i++)
        {
            using var bitmap = new SKBitmap(16, 12);
            bitmap.Erase(new SKColor((byte)(i * 40), 80, 120));
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(input, $"img{i}.jpg"), data.ToArray());
        }
        File.WriteAllText(Path.Combine(input, "broken.jpg"), "not a jpeg");
        string output = Path.Combine(_dir, $"shards-{Guid.NewGuid():N}");
        var log = new StringWriter { NewLine = "\n" };

        int code = ShardsCommand.Pack(new PackOptions { Input = input, Output = output, MaxCount = 4 }, log, interactive: false,
            otlp: backend.GrpcEndpoint);

        Assert.Equal(0, code);
        string text = log.ToString();
        Assert.DoesNotContain('\r', text);   // redirected output: plain lines only
        Assert.Matches(@"packing \d+/7 images \([\d.]+%\) \| \d+ shards \|", text);
        var spans = await backend.WaitForSpans(all => all.Any(s => s.Name == "litevae shards pack" && s.Attr(TelemetryTags.ShardPath) == output),
            TimeSpan.FromSeconds(30));
        var span = spans.Single(s => s.Name == "litevae shards pack" && s.Attr(TelemetryTags.ShardPath) == output);
        Assert.Equal("litevae-shards", span.Service);
        Assert.Equal("6", span.Attr(TelemetryTags.Samples));
        Assert.Equal("1", span.Attr(TelemetryTags.BadSamples));
        Assert.Equal("2", span.Attr("litevae.shards"));
        Assert.Equal(0, span.StatusCode);
        Assert.Null(span.ParentSpanId);
    }

    [Fact]
    public async Task AFailedPackMarksItsSpanFailedWithTheReason()
    {
        string missing = Path.Combine(_dir, "no-such-folder");
        string output = Path.Combine(_dir, $"out-{Guid.NewGuid():N}");
        var e = Assert.ThrowsAny<Exception>(() =>
            ShardsCommand.Pack(new PackOptions { Input = missing, Output = output }, TextWriter.Null, otlp: backend.GrpcEndpoint));
        var spans = await backend.WaitForSpans(all => all.Any(s => s.Attr(TelemetryTags.ShardPath) == output), TimeSpan.FromSeconds(30));
        var span = spans.Single(s => s.Attr(TelemetryTags.ShardPath) == output);
        Assert.Equal(ExportedSpan.StatusError, span.StatusCode);
        Assert.Equal(e.Message, span.StatusMessage);
    }
}
