using System.Text.Json;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Training;

/// <summary>The trainer's <see cref="ConsumedState"/> as the text stored in a checkpoint's trainer state.</summary>
public static class DataPosition
{
    private const string Kind = "litevae-consumed-v1";

    private sealed record Envelope(string Kind, ConsumedState State);

    public static string Format(ConsumedState state) => JsonSerializer.Serialize(new Envelope(Kind, state));

    public static ConsumedState Parse(string text, string source)
    {
        Envelope? e;
        try { e = JsonSerializer.Deserialize<Envelope>(text); }
        catch (JsonException ex) { throw new InvalidDataException($"{source}: the data position is not valid JSON: {ex.Message}"); }
        if (e?.Kind != Kind || e.State is null)
            throw new InvalidDataException($"{source}: the data position is not a '{Kind}' record (written by another data path?).");
        return e.State;
    }
}
