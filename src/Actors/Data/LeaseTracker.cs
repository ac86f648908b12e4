using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Data;

/// <summary>
/// Progress of one shard lease on a data node. Lives outside the reader actor so a restarted reader
/// skips what it already emitted. When the reader reached the shard's end and every emitted sample has
/// left the decode stage, <see cref="Drained"/> fires once.
/// </summary>
public sealed class LeaseTracker(DataProtocol.ShardLeased lease, Action<LeaseTracker> drained)
{
    private readonly HashSet<int> _emitted = [];
    private readonly List<int> _decodeBad = [];
    private int _pending;
    private int _sent;
    private bool _readDone;
    private bool _fired;

    public DataProtocol.ShardLeased Lease { get; } = lease;
    public ShardReadCounts? Counts { get; private set; }
    public CancellationTokenSource Cancel { get; } = new();

    public bool IsCancelled => Cancel.IsCancellationRequested;

    public IndexRanges SkipForRestart()
    {
        lock (_emitted) return IndexRanges.From(Lease.Skip.Indices().Concat(_emitted));
    }

    public void Emitted(int index)
    {
        lock (_emitted) { _emitted.Add(index); _pending++; }
    }

    public void Decoded(bool ok, int index)
    {
        lock (_emitted)
        {
            _pending--;
            if (ok) _sent++;
            else _decodeBad.Add(index);
        }
        Check();
    }

    public void ReadFinished(ShardReadCounts counts)
    {
        lock (_emitted) { Counts = counts; _readDone = true; }
        Check();
    }

    public (int Total, int Sent, IndexRanges Bad) Outcome()
    {
        lock (_emitted)
            return (Counts?.Total ?? 0, _sent, IndexRanges.From((Counts?.Bad ?? []).Concat(_decodeBad)));
    }

    private void Check()
    {
        bool fire;
        lock (_emitted)
        {
            fire = _readDone && _pending == 0 && !_fired;
            if (fire) _fired = true;
        }
        if (fire) drained(this);
    }
}
