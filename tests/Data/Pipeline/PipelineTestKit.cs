using System.Security.Cryptography;
using LiteVae.Data.Decoding;
using LiteVae.Data.Pipeline;
using LiteVae.Data.Shards;
using LiteVae.Data.Tests.Support;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Tests.Pipeline;

/// <summary>A batch reduced to what tests compare: sample keys, epochs, indexes, a pixel hash, the position after it.</summary>
public sealed record BatchRecord(string[] Keys, int[] Epochs, long[] Indexes, string PixelHash, DataPosition PositionAfter);

public static class PipelineTestKit
{
    /// <summary>Five shards of uneven size (13, 9, 17, 4, 11 samples) of small JPEGs; returns their paths.</summary>
    public static string[] MakeShards(string dir, int[]? sizes = null)
    {
        sizes ??= [13, 9, 17, 4, 11];
        var paths = new string[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
        {
            paths[i] = Path.Combine(dir, $"train-{i:D6}.tar");
            ShardBuilder.WriteJpegShard(paths[i], $"s{i}", sizes[i], 40, 32, seedBase: 1000 * i);
        }
        return paths;
    }

    public static DataPipelineOptions Options(IEnumerable<string> shards, int resolution = 16, int batch = 5) => new()
    {
        Shards = ShardSpec.Resolve(shards),
        Transform = new TrainTransform(resolution, new RescaleOptions(), DecodeOptions.Default),
        BatchSize = batch,
        Seed = 1234,
        Streams = 3,
        ShuffleWindow = 4,
        Readers = 2,
        DecodeWorkers = 2,
        RetryDelay = TimeSpan.Zero,
        OpenRetries = 0,
    };

    public static async Task<List<BatchRecord>> Take(DataPipeline pipeline, int count)
    {
        var result = new List<BatchRecord>();
        if (count == 0) return result;
        await foreach (var batch in pipeline.ReadAllAsync())
        {
            using (batch)
                result.Add(Record(batch));
            if (result.Count == count) break;
        }
        return result;
    }

    public static async Task<List<BatchRecord>> All(DataPipeline pipeline)
    {
        var result = new List<BatchRecord>();
        await foreach (var batch in pipeline.ReadAllAsync())
            using (batch)
                result.Add(Record(batch));
        return result;
    }

    public static BatchRecord Record(Batch batch) => new(
        batch.Samples.Select(s => s.Key).ToArray(),
        batch.Samples.Select(s => s.Epoch).ToArray(),
        batch.Samples.Select(s => s.Index).ToArray(),
        Convert.ToHexString(SHA256.HashData(batch.Pixels.Span)),
        batch.PositionAfter);

    public static void AssertSame(IReadOnlyList<BatchRecord> expected, IReadOnlyList<BatchRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Keys, actual[i].Keys);
            Assert.Equal(expected[i].Epochs, actual[i].Epochs);
            Assert.Equal(expected[i].Indexes, actual[i].Indexes);
            Assert.Equal(expected[i].PixelHash, actual[i].PixelHash);
            Assert.Equal(expected[i].PositionAfter, actual[i].PositionAfter);
        }
    }
}
