using System.Diagnostics.Metrics;
using System.Formats.Tar;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Decoding;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;
using SkiaSharp;

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
        string shard = Path.Combine(_dir, "train-000000.tar");
        WriteShard(shard, good: 10, bad: 2);
        var options = new DataPipelineOptions
        {
            Shards = ShardSpec.Resolve([shard]),
            Transform = new TrainTransform(16, new RescaleOptions(), DecodeOptions.Default),
            BatchSize = 2, BatchQueue = 2, Streams = 1, Readers = 1, DecodeWorkers = 1, MaxEpochs = 1,
            MaxBadFraction = 1, OpenRetries = 0, RetryDelay = TimeSpan.Zero,
        };
        await using var pipeline = DataPipeline.Start(options);
        using var observed = PipelineTelemetry.Observe(pipeline, "n1", _telemetry);

        // Nobody consumes: the bounded batch queue fills to its capacity and stays there.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (pipeline.Batches.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(2, pipeline.Batches.Count);
        _listener.RecordObservableInstruments();
        Assert.Equal(["assemble", "batch", "decode", "read"], _depth.Keys.Order());
        Assert.Equal(2, _depth["batch"]);

        int images = 0;
        await foreach (var batch in pipeline.ReadAllAsync())
            using (batch) images += batch.Count;
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

    private static void WriteShard(string path, int good, int bad)
    {
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        int total = good + bad;
        for (int i = 0; i < total; i++)
        {
            byte[] data;
            if (i % 5 == 4 && bad-- > 0)
                data = "not a jpeg"u8.ToArray();
            else
            {
                using var bitmap = new SKBitmap(24, 20);
                bitmap.Erase(new SKColor((byte)(i * 20), 90, 160));
                using var encoded = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
                data = encoded.ToArray();
            }
            var entry = new PaxTarEntry(TarEntryType.RegularFile, $"sample{i:D4}.jpg") { DataStream = new MemoryStream(data) };
            tar.WriteEntry(entry);
        }
    }
}
