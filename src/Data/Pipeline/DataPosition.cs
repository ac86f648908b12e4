using System.Text.Json;
using System.Text.Json.Serialization;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// Where one logical stream stands: the next sample is in the shard at <see cref="ShardOrdinal"/> of
/// the epoch's shard order, inside the shuffle window that begins at sample <see cref="WindowStart"/>
/// of that shard, at <see cref="WindowOffset"/> of the window's shuffled order.
/// </summary>
public sealed record StreamCursor(int ShardOrdinal, long WindowStart, int WindowOffset);

/// <summary>
/// A point in the data order that a run can save and resume from. The order of an epoch is a pure
/// function of (seed, epoch, shard list, streams, shuffle window): shards are permuted per epoch;
/// shard ordinal k belongs to stream k mod S; streams are interleaved one sample at a time,
/// round-robin; within a shard, samples are shuffled in windows. The position records each
/// stream's cursor, the stream whose turn is next, and how many samples of the epoch were consumed,
/// so a restored run seeks straight to the next sample (skipping shard entries by their headers)
/// and continues with the identical sequence, whatever the number of readers or decode workers.
/// </summary>
/// <param name="Global">Samples of the whole run before this position, over all epochs (bad ones included):
/// the run-wide sample number that global batches and data-parallel slices are cut from (<see cref="DataSlice"/>).</param>
public sealed record DataPosition(
    int Epoch,
    long Index,
    int NextStream,
    IReadOnlyList<StreamCursor> Streams,
    string OrderFingerprint,
    long Global = 0)
{
    /// <summary>The start of <paramref name="epoch"/>: stream s begins at shard ordinal s.</summary>
    public static DataPosition StartOf(int epoch, int streams, string fingerprint) =>
        new(epoch, 0, 0, Enumerable.Range(0, streams).Select(s => new StreamCursor(s, 0, 0)).ToArray(), fingerprint);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses a saved position; the message says what is wrong with it.</summary>
    public static DataPosition FromJson(string json)
    {
        DataPosition? p;
        try
        {
            p = JsonSerializer.Deserialize<DataPosition>(json, Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"data position is not valid JSON: {e.Message}", e);
        }
        if (p is null || p.Streams is null || p.OrderFingerprint is null)
            throw new FormatException("data position is incomplete (needs epoch, index, next_stream, streams, order_fingerprint).");
        if (p.Epoch < 0 || p.Index < 0 || p.Global < 0 || p.Streams.Count == 0 || p.NextStream < 0 || p.NextStream >= p.Streams.Count)
            throw new FormatException($"data position has out-of-range values: {json}");
        return p;
    }

    /// <summary>Orders positions of the same data order (earlier epoch, then fewer samples consumed).</summary>
    public int CompareOrder(DataPosition other) =>
        Epoch != other.Epoch ? Epoch.CompareTo(other.Epoch) : Index.CompareTo(other.Index);

    public override string ToString() => $"epoch {Epoch}, sample {Index}";

    public bool Equals(DataPosition? other) =>
        other is not null && Epoch == other.Epoch && Index == other.Index && NextStream == other.NextStream && Global == other.Global &&
        OrderFingerprint == other.OrderFingerprint && Streams.SequenceEqual(other.Streams);

    public override int GetHashCode() => HashCode.Combine(Epoch, Index, NextStream, OrderFingerprint);
}
