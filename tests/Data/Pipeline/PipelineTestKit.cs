using System.Security.Cryptography;
using LiteVae.Data.Decoding;
using LiteVae.Data.Order;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>A batch reduced to what tests compare: its span, sample keys, epochs, shard indexes, a pixel hash.</summary>
public sealed record BatchRecord(long Start, int Span, string[] Keys, int[] Epochs, int[] Indexes, string PixelHash, string[] Skipped);

public static class PipelineTestKit
{
    public static readonly int[] Sizes = [13, 9, 17, 4, 11];
    public const int Total = 13 + 9 + 17 + 4 + 11;

    /// <summary>Five shards of uneven size (13, 9, 17, 4, 11 samples) of small JPEGs; returns their paths.</summary>
    public static string[] MakeShards(string dir, int[]? sizes = null)
    {
        sizes ??= Sizes;
        var paths = new string[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
        {
            paths[i] = Path.Combine(dir, $"train-{i:D6}.tar");
            ShardBuilder.WriteJpegShard(paths[i], $"s{i}", sizes[i], 40, 32, seedBase: 1000 * i);
        }
        return paths;
    }

    public static ReadContext Quiet(List<DataProblem>? problems = null) =>
        new() { Report = p => { if (problems is not null) lock (problems) problems.Add(p); }, OpenRetries = 0, RetryDelay = TimeSpan.Zero };

    public static ShardIndex Index(IEnumerable<string> shards, List<DataProblem>? problems = null) =>
        ShardIndex.Load(ShardSpec.Resolve(shards), Quiet(problems));

    public static readonly OrderSettings Shuffled = new(1234, 3, true, 4);

    public static DataPipelineOptions Options(IEnumerable<string> shards, int resolution = 16, int batch = 5, OrderSettings? order = null,
        List<DataProblem>? problems = null)
    {
        var index = Index(shards, problems);
        return new DataPipelineOptions
        {
            Index = index,
            Order = new SampleOrder(index.Shards.Select(s => s.Name).ToList(), index.Sizes, order ?? Shuffled),
            Transform = new TrainTransform(resolution, new RescaleOptions(), DecodeOptions.Default),
            MaxBatchSize = batch,
            Readers = 2,
            DecodeWorkers = 2,
            OpenRetries = 0,
            RetryDelay = TimeSpan.Zero,
        };
    }

    /// <summary>Asks for <paramref name="count"/> consecutive spans of <paramref name="span"/> from <paramref name="start"/> and collects them.</summary>
    public static async Task<List<BatchRecord>> Run(DataPipeline pipeline, long start, int span, int count)
    {
        var asking = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++) await pipeline.RequestAsync(start + (long)i * span, span);
        });
        var result = new List<BatchRecord>();
        for (int i = 0; i < count; i++)
        {
            var ready = pipeline.Batches.WaitToReadAsync().AsTask();
            if (await Task.WhenAny(ready, asking) == asking && asking.IsFaulted) await asking;   // a refused request
            Assert.True(await ready);
            Assert.True(pipeline.Batches.TryRead(out var batch));
            using (batch) result.Add(Record(batch));
        }
        await asking;
        return result;
    }

    public static BatchRecord Record(Batch batch) => new(
        batch.Start, batch.Span,
        batch.Samples.Select(s => s.Key).ToArray(),
        batch.Samples.Select(s => s.Epoch).ToArray(),
        batch.Samples.Select(s => s.Index).ToArray(),
        Convert.ToHexString(SHA256.HashData(batch.Pixels.Span)),
        batch.Skipped.Select(s => $"{s.Key}:{s.Reason.Name()}").ToArray());

    public static void AssertSame(IReadOnlyList<BatchRecord> expected, IReadOnlyList<BatchRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Start, actual[i].Start);
            Assert.Equal(expected[i].Keys, actual[i].Keys);
            Assert.Equal(expected[i].Epochs, actual[i].Epochs);
            Assert.Equal(expected[i].Indexes, actual[i].Indexes);
            Assert.Equal(expected[i].PixelHash, actual[i].PixelHash);
            Assert.Equal(expected[i].Skipped, actual[i].Skipped);
        }
    }
}
