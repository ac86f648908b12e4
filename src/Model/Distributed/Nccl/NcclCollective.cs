using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed.Nccl;

/// <summary>Settings of the NCCL collective.</summary>
/// <param name="JoinTimeout">How long communicator creation may take (all ranks must join).</param>
/// <param name="OperationTimeout">How long one collective may stay unfinished on the device before the
/// watchdog aborts the communicator (a lost or stalled peer). Generous: a peer waiting for data counts too.</param>
/// <param name="WatchdogInterval">How often the watchdog polls events and NCCL's async error.</param>
public sealed record NcclCollectiveOptions(TimeSpan JoinTimeout, TimeSpan OperationTimeout, TimeSpan WatchdogInterval)
{
    public static NcclCollectiveOptions Default { get; } = new(TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(300), TimeSpan.FromMilliseconds(100));
}

public sealed class NcclCollectiveFactory(NcclLibrary nccl, CudaRuntime cudaRuntime, NcclCollectiveOptions options) : ICollectiveFactory
{
    public string Backend => NcclCollective.BackendName;

    public NcclLibrary Library => nccl;

    /// <summary>Runs NCCL's bootstrap root in this process: call it in rank 0's process.</summary>
    public CollectiveGroupId CreateGroupId() => new(NcclCollective.BackendName, nccl.NewUniqueId().ToArray());

    public ICollective Join(CollectiveGroupId id, int rank, int worldSize, Device device)
    {
        if (device.type != DeviceType.CUDA)
            throw new ArgumentException($"the NCCL backend needs a CUDA device, this rank trains on {device}: use the tcp backend.");
        return NcclCollective.Join(nccl, cudaRuntime, id, rank, worldSize, (int)Math.Max(0, device.index), options);
    }
}

/// <summary>
/// Collectives through NCCL on the tensors' device memory, one communicator per process and device.
///
/// Streams: TorchSharp has no stream API, so every libtorch kernel of this thread runs on the device's
/// default stream, which in PyTorch builds is the legacy NULL stream (stream handle 0; PyTorch is not built
/// with per-thread default streams). NCCL is given stream 0 too, so a collective starts after the kernels
/// that produced its input and later kernels see its result, with no host synchronisation. (The GPU check
/// of the data-parallel benchmark verifies this ordering on real hardware.)
///
/// Never hang: the communicator is created non-blocking (ncclConfig blocking = 0) and creation is polled
/// with a timeout; after each collective an event is recorded on stream 0 and a watchdog thread polls the
/// events and <c>ncclCommGetAsyncError</c>. A collective unfinished after the operation timeout, an async
/// error, or <see cref="Abort"/> (e.g. the actor system saw a member leave) marks the group broken FIRST and
/// then calls <c>ncclCommAbort</c>, which makes the NCCL kernels exit, so a thread blocked in a libtorch
/// synchronisation returns. Anything computed after the failure is garbage: callers check
/// <see cref="IsBroken"/> after their own synchronisation points (before saving a checkpoint) and rebuild
/// from the last checkpoint.
/// </summary>
public sealed unsafe class NcclCollective : ICollective
{
    public const string BackendName = "nccl";
    private const int NcclSum = 0, NcclAvg = 4, NcclUint8 = 1;

    private readonly NcclLibrary _nccl;
    private readonly CudaRuntime _cuda;
    private readonly NcclCollectiveOptions _options;
    private readonly int _device;
    private IntPtr _comm;
    private readonly object _gate = new();
    private readonly object _pendingLock = new();
    private readonly Queue<Pending> _pending = new();
    private readonly Stack<IntPtr> _eventPool = new();
    private readonly Thread? _watchdog;
    private volatile string? _failure;
    private int _aborted;
    private long _sequence;
    private Tensor? _barrierFlag;

    private sealed record Pending(IntPtr Event, long Sequence, string What, long EnqueuedAt);

    private NcclCollective(NcclLibrary nccl, CudaRuntime cudaRuntime, IntPtr comm, int rank, int world, int device, NcclCollectiveOptions options)
    {
        (_nccl, _cuda, _comm, Rank, WorldSize, _device, _options) = (nccl, cudaRuntime, comm, rank, world, device, options);
        _watchdog = new Thread(Watch) { IsBackground = true, Name = $"litevae-nccl-watchdog-{rank}" };
    }

    public string Backend => BackendName;
    public int Rank { get; }
    public int WorldSize { get; }
    public int DeviceIndex => _device;
    public bool IsBroken => _failure is not null;
    public string? FailureReason => _failure;

    /// <summary>Creates this rank's communicator; returns once all ranks have joined (or throws on timeout).</summary>
    public static unsafe NcclCollective Join(NcclLibrary nccl, CudaRuntime cudaRuntime, CollectiveGroupId id, int rank, int worldSize, int device,
        NcclCollectiveOptions options)
    {
        if (id.Backend != BackendName)
            throw new ArgumentException($"group id of backend '{id.Backend}' given to the NCCL collective.");
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentException($"rank {rank} of {worldSize} is not a valid position in a group.");
        var uid = NcclUniqueId.From(id.Bytes);
        cudaRuntime.SetDevice(device);
        var config = NcclConfig214.NonBlocking();
        IntPtr comm;
        nccl.Check(nccl.CommInitRankConfig(&comm, worldSize, uid, rank, &config), $"ncclCommInitRankConfig(rank {rank} of {worldSize}, cuda:{device})");
        var c = new NcclCollective(nccl, cudaRuntime, comm, rank, worldSize, device, options);
        try
        {
            c.WaitUntilIssued($"creating the NCCL communicator (rank {rank} of {worldSize})", options.JoinTimeout);
        }
        catch
        {
            c.Dispose();
            throw;
        }
        c._watchdog!.Start();
        return c;
    }

    // ------------------------------------------------------------------ operations

    public void AllReduce(Tensor tensor, ReduceOp op) => AllReduce([tensor], op);

    public void AllReduce(IReadOnlyList<Tensor> tensors, ReduceOp op) => AllReduceTracked(tensors, op);

    /// <summary>Enqueues the all-reduce and returns the event recorded after it.</summary>
    private IntPtr AllReduceTracked(IReadOnlyList<Tensor> tensors, ReduceOp op)
    {
        if (tensors.Count == 0) return IntPtr.Zero;
        var dtypes = new int[tensors.Count];
        long bytes = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            CheckTensor(tensors[i], $"all-reduce tensor {i}");
            dtypes[i] = DataType(tensors[i].dtype);
            if (op == ReduceOp.Average && tensors[i].dtype is ScalarType.Int32 or ScalarType.Int64 or ScalarType.Byte or ScalarType.Int8)
                throw new ArgumentException($"an average of {tensors[i].dtype} values is not exact: all-reduce integers with Sum.");
            bytes += TensorMemory.Bytes(tensors[i]);
        }
        int ncclOp = op == ReduceOp.Average ? NcclAvg : NcclSum;
        lock (_gate)
        {
            ThrowIfBroken();
            _cuda.SetDevice(_device);
            string what = $"all-reduce #{_sequence + 1} of {bytes} bytes";
            if (tensors.Count > 1) Call(_nccl.GroupStart(), "ncclGroupStart");
            for (int i = 0; i < tensors.Count; i++)
            {
                var p = TensorMemory.Address(tensors[i]);
                Call(_nccl.AllReduceFn(p, p, (nuint)tensors[i].numel(), dtypes[i], ncclOp, _comm, IntPtr.Zero), "ncclAllReduce");
            }
            if (tensors.Count > 1) Call(_nccl.GroupEnd(), "ncclGroupEnd");
            WaitUntilIssued(what, _options.OperationTimeout);
            return Track(what);
        }
    }

    public void Broadcast(Tensor tensor, int root)
    {
        CheckTensor(tensor, "broadcast tensor");
        if (root < 0 || root >= WorldSize)
            throw new ArgumentException($"broadcast root {root} is not a rank of this group of {WorldSize}.");
        lock (_gate)
        {
            ThrowIfBroken();
            _cuda.SetDevice(_device);
            var p = TensorMemory.Address(tensor);
            long bytes = TensorMemory.Bytes(tensor);
            string what = $"broadcast #{_sequence + 1} of {bytes} bytes from rank {root}";
            unsafe
            {
                // As bytes: any dtype, identical bits everywhere.
                Call(_nccl.BroadcastFn(p, p, (nuint)bytes, NcclUint8, root, _comm, IntPtr.Zero), "ncclBroadcast");
            }
            WaitUntilIssued(what, _options.OperationTimeout);
            Track(what);
        }
    }

    public void Barrier()
    {
        lock (_gate)
        {
            _barrierFlag ??= ones(1, ScalarType.Int32, new Device(DeviceType.CUDA, _device)).DetachFromDisposeScope();
            var ev = AllReduceTracked([_barrierFlag], ReduceOp.Sum);
            // Wait for the device, not only the enqueue, polling so an abort or the timeout ends the wait.
            // Holding the gate: no other operation can re-record this event meanwhile.
            var sw = Stopwatch.StartNew();
            while (!_cuda.EventDone(ev))
            {
                ThrowIfBroken();
                if (sw.Elapsed > _options.OperationTimeout)
                {
                    Fail($"barrier did not finish within {_options.OperationTimeout.TotalSeconds:0} s (a peer is gone or stalled)");
                    ThrowIfBroken();
                }
                Backoff(sw);
            }
            ThrowIfBroken();
        }
    }

    public void Abort(string reason) => Fail($"aborted: {reason}");

    public void ThrowIfBroken()
    {
        if (_failure is { } f)
            throw new CollectiveException($"NCCL collective (rank {Rank} of {WorldSize}, cuda:{_device}) is broken: {f}");
    }

    /// <summary>A healthy group finishes its queued work and frees the communicator; a broken one was aborted already.</summary>
    public void Dispose()
    {
        if (_failure is null)
        {
            try
            {
                // Let the watchdog drain the queued collectives (it aborts on timeout), then stop it.
                var sw = Stopwatch.StartNew();
                while (true)
                {
                    ThrowIfBroken();
                    lock (_pendingLock)
                        if (_pending.Count == 0) break;
                    if (sw.Elapsed > _options.OperationTimeout + _options.WatchdogInterval * 4)
                        throw new CollectiveException("queued collectives did not finish before close.");
                    Thread.Sleep(1);
                }
                _stopping = true;
                _watchdog?.Join();
                _cuda.SetDevice(_device);
                unsafe
                {
                    Call(_nccl.CommFinalize(_comm), "ncclCommFinalize");
                }
                WaitUntilIssued("finalizing the NCCL communicator", _options.OperationTimeout);
                if (Interlocked.Exchange(ref _aborted, 1) == 0)
                    unsafe
                    {
                        _nccl.CommDestroy(_comm);
                    }
                lock (_pendingLock)
                    _failure ??= "closed";
            }
            catch (CollectiveException)
            {
                // Fail() has aborted the communicator.
            }
        }
        else
        {
            Fail("closed");
        }
        _stopping = true;
        if (_watchdog is { IsAlive: true } w)
            w.Join(TimeSpan.FromSeconds(5));
        lock (_pendingLock)
        {
            foreach (var p in _pending) _cuda.DestroyEvent(p.Event);
            _pending.Clear();
            while (_eventPool.Count > 0) _cuda.DestroyEvent(_eventPool.Pop());
        }
        _barrierFlag?.Dispose();
    }

    private volatile bool _stopping;

    // ------------------------------------------------------------------ internals

    private void CheckTensor(Tensor t, string what)
    {
        TensorMemory.RequireContiguous(t, what);
        if (t.device_type != DeviceType.CUDA || t.device_index != _device)
            throw new ArgumentException($"{what} is on {t.device}, but this NCCL rank works on cuda:{_device}: move it to the rank's device first.");
    }

    private static int DataType(ScalarType t) => t switch
    {
        ScalarType.Int8 => 0,
        ScalarType.Byte => 1,
        ScalarType.Int32 => 2,
        ScalarType.Int64 => 4,
        ScalarType.Float16 => 6,
        ScalarType.Float32 => 7,
        ScalarType.Float64 => 8,
        ScalarType.BFloat16 => 9,
        _ => throw new NotSupportedException($"NCCL does not reduce {t} tensors."),
    };

    private void Call(NcclResult r, string call)
    {
        if (r is NcclResult.Success or NcclResult.InProgress) return;
        string message = $"{call} failed: {_nccl.ErrorString(r)}{_nccl.LastError(_comm)} [NCCL {r}]";
        Fail(message);
        ThrowIfBroken();
    }

    /// <summary>
    /// A non-blocking communicator may report ncclInProgress after a call: poll its state until the call
    /// is issued, failing (and aborting) on an error, an abort from another thread, or the timeout.
    /// </summary>
    private unsafe void WaitUntilIssued(string what, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            ThrowIfBroken();
            NcclResult state;
            var r = _nccl.CommGetAsyncError(_comm, &state);
            if (r != NcclResult.Success) state = r;
            if (state == NcclResult.Success) return;
            if (state != NcclResult.InProgress)
            {
                Fail($"{what}: {_nccl.ErrorString(state)}{_nccl.LastError(_comm)} [NCCL {state}]");
                ThrowIfBroken();
            }
            if (sw.Elapsed > timeout)
            {
                Fail($"{what} did not complete within {timeout.TotalSeconds:0} s (a rank did not join or is gone)");
                ThrowIfBroken();
            }
            Backoff(sw);
        }
    }

    /// <summary>
    /// One pause of a polling loop. A non-blocking communicator reports a collective "in progress" for some
    /// microseconds after the call while NCCL enqueues it; a 1 ms sleep there (Linux sleeps ~1.06 ms) used to
    /// cost every all-reduce the same ~1.1 ms whatever its size. So: only yield the core for the first
    /// <see cref="SpinPhase"/> of a wait (the wait is on the training thread's critical path anyway), and sleep
    /// only in waits that are already long (a peer joining, a stalled group), where 1 ms more is noise.
    /// </summary>
    private static void Backoff(Stopwatch waited)
    {
        if (waited.Elapsed < SpinPhase) Thread.Yield();
        else Thread.Sleep(1);
    }

    private static readonly TimeSpan SpinPhase = TimeSpan.FromMilliseconds(20);

    private IntPtr Track(string what)
    {
        IntPtr ev;
        lock (_pendingLock)
            ev = _eventPool.Count > 0 ? _eventPool.Pop() : _cuda.CreateEvent();
        _cuda.RecordOnDefaultStream(ev);
        lock (_pendingLock)
            _pending.Enqueue(new Pending(ev, ++_sequence, what, Stopwatch.GetTimestamp()));
        return ev;
    }

    private unsafe void Watch()
    {
        try
        {
            _cuda.SetDevice(_device);
            while (_failure is null && !_stopping)
            {
                Thread.Sleep(_options.WatchdogInterval);
                if (_failure is not null || _stopping) break;
                NcclResult state;
                var r = _nccl.CommGetAsyncError(_comm, &state);
                if (r != NcclResult.Success) state = r;
                if (state is not (NcclResult.Success or NcclResult.InProgress))
                {
                    Fail($"NCCL reported {_nccl.ErrorString(state)}{_nccl.LastError(_comm)} [NCCL {state}] (a peer failed or is unreachable)");
                    break;
                }
                lock (_pendingLock)
                {
                    while (_pending.Count > 0)
                    {
                        var head = _pending.Peek();
                        if (_cuda.EventDone(head.Event))
                        {
                            _eventPool.Push(_pending.Dequeue().Event);
                            continue;
                        }
                        if (Stopwatch.GetElapsedTime(head.EnqueuedAt) > _options.OperationTimeout)
                        {
                            Fail($"{head.What} did not finish on the device within {_options.OperationTimeout.TotalSeconds:0} s (a peer is gone or stalled)");
                        }
                        break;
                    }
                }
            }
        }
        catch (Exception e)
        {
            Fail($"watchdog: {e.Message}");
        }
    }

    /// <summary>Marks the group broken (first reason wins), then aborts the communicator once.</summary>
    private void Fail(string reason)
    {
        lock (_pendingLock)
            _failure ??= reason;
        if (Interlocked.Exchange(ref _aborted, 1) == 0 && _comm != IntPtr.Zero)
        {
            unsafe
            {
                _nccl.CommAbort(_comm);
            }
        }
    }
}
