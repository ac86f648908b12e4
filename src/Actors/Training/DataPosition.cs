using System.Text.Json;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Training;

/// <summary>
/// Where a run stands in its data, saved with every checkpoint: the sample order it was trained in
/// (<paramref name="Order"/>, the order's fingerprint), the first sample not yet trained, and the whole run's
/// account of samples trained and skipped and of batches dropped as repeats. Resuming trains on from
/// <paramref name="NextSample"/>, in the same order, whatever the number of data nodes or trainer ranks.
/// </summary>
public sealed record DataPosition(string Order, long NextSample, SampleCounts Samples, long DroppedBatches)
{
    private const string Kind = "litevae-data-position-v2";

    private sealed record Envelope(string Kind, DataPosition Position);

    public static DataPosition Start(string order) => new(order, 0, SampleCounts.Empty, 0);

    public string ToJson() => JsonSerializer.Serialize(new Envelope(Kind, this));

    /// <summary>Reads a saved position; the message names <paramref name="source"/> and what is wrong.</summary>
    public static DataPosition Parse(string text, string source)
    {
        Envelope? e;
        try { e = JsonSerializer.Deserialize<Envelope>(text); }
        catch (JsonException ex) { throw new InvalidDataException($"{source}: the data position is not valid JSON: {ex.Message}"); }
        if (e?.Kind != Kind || e.Position?.Order is null || e.Position.Samples is null)
            throw new InvalidDataException(
                $"{source}: the checkpoint's data position is not a '{Kind}' record: it was written by an older LiteVae that " +
                "tracked samples per shard. Start a new run from its weights with --init-from (fresh optimizer and data order).");
        return e.Position;
    }
}
