using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using LiteVae.Actors.Data;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Tests.Synthetic;

/// <summary>
/// Test/benchmark stand-in for the WebDataset reader: shard "synthetic-{i}" holds sizes[i] samples whose
/// encoded bytes name (shard, index). Can inject failures and a per-sample read delay.
/// </summary>
public sealed class SyntheticShards(int[] sizes, int encodedBytes = 64, TimeSpan? perSample = null) : IShardReader
{
    public ConcurrentDictionary<int, int> FailuresToInject { get; } = new();

    public IReadOnlyList<string> Paths { get; } = Enumerable.Range(0, sizes.Length).Select(i => $"synthetic-{i}").ToList();

    public int this[int shard] => sizes[shard];

    public async IAsyncEnumerable<RawSample> ReadAsync(ShardReadRequest request, ShardReadCounts counts, [EnumeratorCancellation] CancellationToken ct)
    {
        int shard = int.Parse(request.Path["synthetic-".Length..]);
        for (int i = 0; i < sizes[shard]; i++)
        {
            if (i == sizes[shard] / 2 && FailuresToInject.TryGetValue(shard, out int left) && left > 0)
            {
                FailuresToInject[shard] = left - 1;
                throw new IOException($"injected read failure in {request.Path}");
            }
            if (request.Skip.Contains(i)) continue;
            if (perSample is { } d) await Task.Delay(d, ct);
            var bytes = new byte[Math.Max(8, encodedBytes)];
            BitConverter.TryWriteBytes(bytes.AsSpan(0, 4), shard);
            BitConverter.TryWriteBytes(bytes.AsSpan(4, 4), i);
            yield return new RawSample(new SampleId(request.Epoch, shard, i), $"{shard:D4}-{i:D6}", bytes);
        }
        counts.Total = sizes[shard];
        await Task.Yield();
    }
}

/// <summary>Fills an image with a value derived from the (shard, index) in the encoded bytes; every
/// <c>badEvery</c>-th sample is "undecodable". Optional CPU work per sample (a busy loop) for benchmarks.</summary>
public sealed class SyntheticDecoder(int badEvery = 0, TimeSpan? work = null) : ISampleDecoder
{
    public static byte Value(int shard, int index) => (byte)((shard * 31 + index * 7) % 251);

    public string? Decode(RawSample sample, long seed, Span<byte> destination)
    {
        int shard = BitConverter.ToInt32(sample.Encoded, 0), index = BitConverter.ToInt32(sample.Encoded, 4);
        if (badEvery > 0 && index % badEvery == badEvery - 1) return "synthetic bad sample";
        if (work is { } w)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (sw.Elapsed < w) Thread.SpinWait(50);
        }
        destination.Fill(Value(shard, index));
        return null;
    }
}
