using System.Diagnostics.Metrics;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Actors.Tests.Telemetry;

public sealed class MetricsTests : IDisposable
{
    private readonly LiteVaeTelemetry _telemetry = new();
    private readonly MeterListener _listener = new();
    private readonly List<(string Name, double Value, Dictionary<string, object?> Tags)> _seen = [];
    private readonly List<Instrument> _published = [];

    public MetricsTests()
    {
        _listener.InstrumentPublished = (instrument, l) =>
        {
            if (!ReferenceEquals(instrument.Meter, _telemetry.Meter)) return;
            _published.Add(instrument);
            l.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _telemetry.Dispose();
    }

    [Fact]
    public void EveryInstrumentTheIssueAsksForExistsWithAUnit()
    {
        var byName = _published.ToDictionary(i => i.Name);
        var expected = new Dictionary<string, string>
        {
            ["litevae.train.throughput"] = "{image}/s",
            ["litevae.train.images"] = "{image}",
            ["litevae.train.step.duration"] = "s",
            ["litevae.data.batch.wait"] = "s",
            ["litevae.train.data_wait.ratio"] = "1",
            ["litevae.data.queue.depth"] = "{item}",
            ["litevae.data.queue.bytes"] = "By",
            ["litevae.cluster.transfer.bytes"] = "By",
            ["litevae.gpu.memory.used"] = "By",
            ["litevae.train.loss"] = "1",
            ["litevae.data.bad_samples"] = "{sample}",
            ["litevae.data.samples"] = "{sample}",
            ["litevae.checkpoint.duration"] = "s",
            ["litevae.eval.duration"] = "s",
        };
        foreach (var (name, unit) in expected)
        {
            Assert.True(byName.ContainsKey(name), $"missing instrument {name}");
            Assert.Equal(unit, byName[name].Unit);
        }
        Assert.All(_published, i =>
        {
            Assert.StartsWith("litevae.", i.Name);
            Assert.False(string.IsNullOrEmpty(i.Unit), i.Name);
            Assert.False(string.IsNullOrEmpty(i.Description), i.Name);
        });
        Assert.IsType<ObservableGauge<long>>(byName["litevae.data.queue.depth"]);
        Assert.IsType<Gauge<double>>(byName["litevae.train.loss"]);
    }

    [Fact]
    public void StepAndWindowNumbersArriveAsRecorded()
    {
        _telemetry.RecordStep(stepSeconds: 0.125, dataWaitSeconds: 0.002, images: 16);
        _telemetry.RecordStep(0.25, 0, 16);
        _telemetry.RecordWindow(step: 200, imagesPerSecond: 85.5, dataWaitFraction: 0.01,
            [new("total", 0.75), new("kl", 1234.5)]);

        Assert.Equal([0.125, 0.25], Values("litevae.train.step.duration"));
        Assert.Equal([0.002, 0.0], Values("litevae.data.batch.wait"));
        Assert.Equal(32, Values("litevae.train.images").Sum());
        Assert.Equal([85.5], Values("litevae.train.throughput"));
        Assert.Equal([0.01], Values("litevae.train.data_wait.ratio"));
        Assert.Equal([200.0], Values("litevae.train.step"));
        var losses = _seen.Where(m => m.Name == "litevae.train.loss")
            .ToDictionary(m => (string)m.Tags[TelemetryTags.LossTerm]!, m => m.Value);
        Assert.Equal(new Dictionary<string, double> { ["total"] = 0.75, ["kl"] = 1234.5 }, losses);
    }

    [Fact]
    public void QueueDepthIsObservedPerStageUntilTheHandleIsDisposed()
    {
        long decodeDepth = 3, batchDepth = 1, batchBytes = 4096;
        using var decode = _telemetry.ObserveQueue("decode", "n1", () => decodeDepth);
        var batch = _telemetry.ObserveQueue("batch", "n1", () => batchDepth, () => batchBytes);

        _listener.RecordObservableInstruments();
        Assert.Equal(new Dictionary<string, double> { ["decode"] = 3, ["batch"] = 1 }, ByStage("litevae.data.queue.depth"));
        Assert.Equal(new Dictionary<string, double> { ["batch"] = 4096 }, ByStage("litevae.data.queue.bytes"));
        Assert.All(_seen.Where(m => m.Name == "litevae.data.queue.depth"), m => Assert.Equal("n1", m.Tags[TelemetryTags.Node]));

        _seen.Clear();
        decodeDepth = 7;   // the gauge reads the live value, not a copy
        batch.Dispose();
        batch.Dispose();   // idempotent
        _listener.RecordObservableInstruments();
        Assert.Equal(new Dictionary<string, double> { ["decode"] = 7 }, ByStage("litevae.data.queue.depth"));
        Assert.Empty(ByStage("litevae.data.queue.bytes"));
    }

    [Fact]
    public void GpuMemoryGaugeReportsOnlyWhatNvmlSees()
    {
        _listener.RecordObservableInstruments();
        var used = _seen.Where(m => m.Name == "litevae.gpu.memory.used").ToList();
        var readings = GpuMemory.Read();
        // On a machine without the NVIDIA driver both are empty; with one, one value per GPU.
        Assert.Equal(readings.Count, used.Count);
        Assert.Equal(readings.Select(r => $"gpu{r.Index}"), used.Select(m => (string)m.Tags[TelemetryTags.Device]!));
        Assert.All(readings, r => Assert.InRange(r.Used, 0ul, r.Total));
        if (!GpuMemory.Available) Assert.Empty(readings);
    }

    private void Add(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var d = new Dictionary<string, object?>();
        foreach (var t in tags) d[t.Key] = t.Value;
        lock (_seen) _seen.Add((i.Name, v, d));
    }

    private List<double> Values(string name) => _seen.Where(m => m.Name == name).Select(m => m.Value).ToList();

    private Dictionary<string, double> ByStage(string name) =>
        _seen.Where(m => m.Name == name).ToDictionary(m => (string)m.Tags[TelemetryTags.Stage]!, m => m.Value);
}
