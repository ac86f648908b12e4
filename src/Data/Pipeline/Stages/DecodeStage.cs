using System.Buffers;
using System.Threading.Channels;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Pipeline.Stages;

/// <summary>
/// A decode worker: takes raw samples in any order, decodes and transforms each into a pooled
/// 3 × R × R buffer (or counts it as bad, with shard, key and reason), and passes it on with its
/// sequence number. Several run in parallel; each owns its scratch buffers.
/// </summary>
public sealed class DecodeStage(DataPipelineOptions options, DataStats stats)
{
    public async Task RunAsync(ChannelReader<RawSample> input, ChannelWriter<DecodedSample> output, CancellationToken ct)
    {
        var scratch = new TransformScratch();
        int r = options.Transform.Resolution;
        int size = 3 * r * r;
        await foreach (var sample in input.ReadAllAsync(ct).ConfigureAwait(false))
        {
            DecodedSample decoded;
            using (sample)
                decoded = Decode(sample, size, scratch);
            try
            {
                await output.WriteAsync(decoded, ct).ConfigureAwait(false);
            }
            catch
            {
                decoded.Dispose();
                throw;
            }
            stats.ThrowIfTooManyBad(options.MaxBadFraction, options.MinSamplesForBadCheck);
        }
    }

    private DecodedSample Decode(RawSample sample, int size, TransformScratch scratch)
    {
        var position = sample.PositionAfter!;
        if (sample.KeyEscaped) stats.RecordEscapedKey();
        if (sample.Problem is { } known)
        {
            stats.Record(known);
            return new DecodedSample(sample.Sequence, position, null, null);
        }
        byte[] pixels = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            options.Transform.Apply(sample.Image, sample.AugmentKey(options.Seed), pixels.AsSpan(0, size), scratch);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            ArrayPool<byte>.Shared.Return(pixels);
            var problem = e is BadSampleException bad
                ? new DataProblem(bad.Reason, sample.Shard, sample.Key, bad.Detail)
                : new DataProblem(BadReason.CorruptImage, sample.Shard, sample.Key, $"decoder error: {e.GetType().Name}: {e.Message}");
            stats.Record(problem);
            return new DecodedSample(sample.Sequence, position, null, null);
        }
        stats.RecordGood();
        var info = new SampleInfo(sample.Shard, sample.Key, sample.Epoch, sample.Index, sample.Metadata, sample.Global);
        return new DecodedSample(sample.Sequence, position, info, pixels);
    }
}
