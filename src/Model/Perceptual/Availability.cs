namespace LiteVae.Model.Perceptual;

/// <summary>
/// Either a value (a loaded network, a metric) or the reason it is unavailable: which file was
/// missing, where it was looked for, and how to get it. Training and evaluation show the reason once
/// and go on without the term; they never fall back to random weights.
/// </summary>
public sealed class Availability<T> where T : class
{
    private Availability(T? value, string? reason)
    {
        Value = value;
        Reason = reason;
    }

    public T? Value { get; }

    /// <summary>Why the value is missing; null when available.</summary>
    public string? Reason { get; }

    public bool IsAvailable => Value is not null;

    public static Availability<T> Available(T value) => new(value ?? throw new ArgumentNullException(nameof(value)), null);

    public static Availability<T> Unavailable(string reason) =>
        new(null, string.IsNullOrWhiteSpace(reason) ? throw new ArgumentException("a reason is required", nameof(reason)) : reason);

    /// <summary>The value, or an exception carrying the reason (for callers that cannot go on without it).</summary>
    public T Require(string what) => Value ?? throw new InvalidOperationException($"{what} is unavailable: {Reason}");

    public override string ToString() => IsAvailable ? "available" : $"unavailable: {Reason}";
}
