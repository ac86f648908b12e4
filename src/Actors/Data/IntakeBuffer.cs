using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Data;

/// <summary>
/// The batches in front of a DeviceTrainer, held by where they start in the run's sample order. Data nodes
/// (in this process or across the network) add them in any order; the trainer takes only the batch that starts
/// where it stands. So every span is trained once and in order, whichever node made it and however often it
/// arrived: a batch for a span already trained (a replaced node's batch still in flight) is dropped and
/// counted. Thread-safe; it outlives trainer restarts (<see cref="Reset"/> clears it for the new position).
/// </summary>
public sealed class IntakeBuffer(int capacity)
{
    private readonly object _lock = new();
    private readonly SortedDictionary<long, Batch> _held = new();
    private TaskCompletionSource _arrived = NewSignal();
    private long _next;
    private bool _closed;
    private long _dropped;

    /// <summary>Batches held at most (the Coordinator never leases further ahead of the trainer).</summary>
    public int Capacity { get; } = capacity >= 1 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity));
    public int Depth { get { lock (_lock) return _held.Count; } }
    /// <summary>Batches dropped because their span was already trained, held, or too far ahead (since this process started).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    public long Next { get { lock (_lock) return _next; } }

    /// <summary>The trainer (re)starts at sample <paramref name="next"/>: whatever is held is void.</summary>
    public void Reset(long next)
    {
        lock (_lock)
        {
            foreach (var b in _held.Values) b.Dispose();
            _held.Clear();
            _next = next;
            _closed = false;
        }
    }

    /// <summary>Takes ownership of <paramref name="batch"/>: held for the trainer, or dropped (disposed) when its
    /// span is behind the trainer, already held, or beyond the capacity. Never waits.</summary>
    public bool Add(Batch batch)
    {
        TaskCompletionSource? wake = null;
        lock (_lock)
        {
            bool keep = !_closed && batch.Start >= _next && !_held.ContainsKey(batch.Start)
                        && batch.Start < _next + (long)Capacity * Math.Max(1, batch.Span);
            if (keep)
            {
                _held[batch.Start] = batch;
                if (batch.Start == _next) (wake, _arrived) = (_arrived, NewSignal());
            }
            else
            {
                Interlocked.Increment(ref _dropped);
                batch.Dispose();
                return false;
            }
        }
        wake?.TrySetResult();
        return true;
    }

    /// <summary>The batch that starts where the trainer stands, if it is here; the trainer then stands at its end.</summary>
    public bool TryTake(out Batch batch)
    {
        lock (_lock)
        {
            if (!_held.Remove(_next, out batch!)) return false;
            _next = batch.End;
            return true;
        }
    }

    /// <summary>Completes when the batch the trainer waits for has arrived (true) or the buffer closed (false).</summary>
    public async Task<bool> WaitAsync()
    {
        Task wait;
        lock (_lock)
        {
            if (_closed) return false;
            if (_held.ContainsKey(_next)) return true;
            wait = _arrived.Task;
        }
        await wait.ConfigureAwait(false);
        lock (_lock) return !_closed;
    }

    /// <summary>Shutdown: disposes what is held, refuses what comes later, wakes a waiting trainer.</summary>
    public void Close()
    {
        TaskCompletionSource wake;
        lock (_lock)
        {
            _closed = true;
            foreach (var b in _held.Values) b.Dispose();
            _held.Clear();
            (wake, _arrived) = (_arrived, NewSignal());
        }
        wake.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
