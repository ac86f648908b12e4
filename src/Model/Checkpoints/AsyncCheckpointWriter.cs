namespace LiteVae.Model.Checkpoints;

/// <summary>
/// Writes snapshots on a background thread, one at a time, so the training thread only pays for the
/// device→host copy. A new submission waits for the previous write (at most one snapshot is in
/// memory besides the one being built); a failed write is rethrown on the next call.
/// </summary>
public sealed class AsyncCheckpointWriter : IDisposable
{
    private readonly string _checkpointsDir;
    private readonly RetentionPolicy _retention;
    private readonly Action<string>? _afterEachFile;
    private Task<string>? _pending;

    public AsyncCheckpointWriter(string checkpointsDir, RetentionPolicy retention, Action<string>? afterEachFile = null)
    {
        retention.Validate();
        _checkpointsDir = checkpointsDir;
        _retention = retention;
        _afterEachFile = afterEachFile;
    }

    /// <summary>Step directory of the last completed write.</summary>
    public string? LastWritten { get; private set; }

    /// <summary>Raised on the writer thread after each completed checkpoint (its directory).</summary>
    public event Action<string>? Written;

    /// <summary>Hands a snapshot over (the writer disposes it). Waits for the previous write first.</summary>
    public void Submit(CheckpointSnapshot snapshot)
    {
        try
        {
            WaitIdle();
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }
        _pending = Task.Factory.StartNew(() =>
        {
            using (snapshot)
            {
                string dir = CheckpointStore.Write(_checkpointsDir, snapshot, _retention, _afterEachFile);
                Written?.Invoke(dir);
                return dir;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Waits for the write in flight, if any; rethrows its error.</summary>
    public void WaitIdle()
    {
        var pending = _pending;
        if (pending is null) return;
        _pending = null;
        try
        {
            LastWritten = pending.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            throw new IOException($"writing a checkpoint under {_checkpointsDir} failed: {e.Message}", e);
        }
    }

    public void Dispose() => WaitIdle();
}
