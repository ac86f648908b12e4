using System.Diagnostics.Metrics;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Tests.Synthetic;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Tests.Telemetry;

public sealed class PipelineTelemetryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("litevae-pipe-telemetry-").FullName;
    private readonly LiteVaeTelemetry _telemetry = new();
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _depth = [];
    private readonly Dictionary<string, long> _bad = [];
    private long _good = -1;

    public PipelineTelemetryTests()
    {
        _listener.InstrumentPublished = (i, l) => { if (ReferenceEquals(i.Meter, _telemetry.Meter)) l.EnableMeasurementEvents(i); };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            var d = new Dictionary<string, string?>();
            foreach (var t in tags) d[t.Key] = t.Value as string;
            string? Tag(string k) => d.GetValueOrDefault(k);
            lock (_depth)
            {
                if (i.Name == "litevae.data.queue.depth") _depth[Tag(TelemetryTags.Stage)!] = v;
                if (i.Name == "litevae.data.samples") _good = v;
                if (i.Name == "litevae.data.bad_samples") _bad[Tag(TelemetryTags.Reason)!] = _bad.GetValueOrDefault(Tag(TelemetryTags.Reason)!) + v;
            }
        });
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _telemetry.Dispose();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public async Task QueueDepthGaugesReadThePipelinesQueuesAndBadSamplesAreCountedByReason()
    {
        var shards = new TestShards(_dir, [12], badEvery: 5);   // samples 4 and 9 are not images
        var data = shards.Data(batch: 2, decodeWorkers: 1) with { PrefetchBatches = 2, Readers = 1 };
        var options = data.CreatePipelineOptions(data.LoadIndex(_ => { }), DataUse.Train);
        await using var pipeline = DataPipeline.Start(options);
        using var observed = PipelineTelemetry.Observe(pipeline, "n1", _telemetry);

        // Nobody consumes: the bounded batch queue fills to its capacity and stays there.
        var asking = Task.Run(async () =>
        {
            for (int start = 0; start < 12; start += 2) await pipeline.RequestAsync(start, 2);
            pipeline.Complete();
        });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (pipeline.Batches.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(2, pipeline.Batches.Count);
        _listener.RecordObservableInstruments();
        Assert.Equal(["batch", "decode", "read"], _depth.Keys.Order());
        Assert.Equal(2, _depth["batch"]);

        int images = 0;
        await foreach (var batch in pipeline.ReadAllAsync())
            using (batch) images += batch.Count;
        await asking;
        Assert.Equal(10, images);
        Assert.Equal(new Dictionary<string, long> { ["not-an-image"] = 2 }, _bad);
        Assert.Equal(pipeline.Stats.Bad, _bad.Values.Sum());
        _listener.RecordObservableInstruments();
        Assert.Equal(10, _good);

        _listener.RecordObservableInstruments();
        Assert.Equal(0, _depth["batch"]);   // drained
        observed.Dispose();
        _depth.Clear();
        _listener.RecordObservableInstruments();
        Assert.Empty(_depth);               // unregistered with the pipeline
    }
}
