namespace LiteVae.Actors.Data;

/// <summary>Bytes held by one pipeline stage now, and the most it ever held (thread-safe).</summary>
public sealed class StageGauge(string stage)
{
    private long _current;
    private long _peak;

    public string Stage { get; } = stage;
    public long Current => Interlocked.Read(ref _current);
    public long Peak => Interlocked.Read(ref _peak);

    public void Add(long bytes)
    {
        long now = Interlocked.Add(ref _current, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak) { }
    }

    public void Remove(long bytes) => Interlocked.Add(ref _current, -bytes);
}
