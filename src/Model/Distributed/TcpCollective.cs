using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>Settings of the TCP collective.</summary>
/// <param name="Address">Interface to listen on and advertise (loopback for one machine).</param>
/// <param name="JoinTimeout">How long the rendezvous and ring connection may take.</param>
/// <param name="OperationTimeout">How long one collective may wait for a peer before the group breaks.</param>
public sealed record TcpCollectiveOptions(IPAddress Address, TimeSpan JoinTimeout, TimeSpan OperationTimeout)
{
    public static TcpCollectiveOptions Loopback { get; } = new(IPAddress.Loopback, TimeSpan.FromSeconds(120), TimeSpan.FromSeconds(300));
}

public sealed class TcpCollectiveFactory(TcpCollectiveOptions options) : ICollectiveFactory
{
    public string Backend => TcpCollective.BackendName;

    public CollectiveGroupId CreateGroupId() => TcpCollective.CreateGroupId(options);

    public ICollective Join(CollectiveGroupId id, int rank, int worldSize, Device device) =>
        TcpCollective.Join(id, rank, worldSize, options);
}

/// <summary>
/// Collectives over plain TCP for CPU-only clusters and tests: ranks (threads or processes, on one or
/// several machines) form a ring; all-reduce is the bandwidth-optimal ring algorithm (reduce-scatter, then
/// all-gather) on float32/float64/int32/int64 host memory; bf16/fp16 are reduced in float32; device tensors
/// are staged through host memory.
///
/// Reproducible: chunk c of the result is summed in ring order starting at rank c, the same on every run
/// for a given world size, and the all-gather copies the owner's bytes, so every rank gets identical bits.
/// Every transfer carries (operation, sequence, length), so ranks calling different operations fail with a
/// clear error instead of mixing data. A lost peer, a timeout or <see cref="Abort"/> closes the sockets,
/// which unblocks the caller and, through the ring, every other rank.
/// </summary>
public sealed class TcpCollective : ICollective
{
    public const string BackendName = "tcp";

    private const uint FrameMagic = 0x4C565246; // "LVRF"
    private const int HeaderBytes = 24;
    private const long BroadcastPiece = 4 << 20;

    private readonly Socket? _next;
    private readonly Socket? _prev;
    private readonly Sender? _sender;
    private readonly TcpCollectiveOptions _options;
    private long _sequence;
    private volatile string? _failure;
    private readonly object _gate = new();

    private TcpCollective(int rank, int world, Socket? next, Socket? prev, TcpCollectiveOptions options)
    {
        Rank = rank;
        WorldSize = world;
        _next = next;
        _prev = prev;
        _options = options;
        if (next is not null)
            _sender = new Sender(next, $"litevae-tcp-send-{rank}");
    }

    public string Backend => BackendName;
    public int Rank { get; }
    public int WorldSize { get; }
    public bool IsBroken => _failure is not null;
    public string? FailureReason => _failure;

    public static CollectiveGroupId CreateGroupId(TcpCollectiveOptions options) =>
        TcpRendezvous.CreateGroupId(options.Address, options.JoinTimeout);

    /// <summary>Joins the group (blocks until the ring is connected or the join timeout passes).</summary>
    public static TcpCollective Join(CollectiveGroupId id, int rank, int worldSize, TcpCollectiveOptions options)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentException($"rank {rank} of {worldSize} is not a valid position in a group.");
        var (nonce, rootEp) = TcpRendezvous.Parse(id);
        if (worldSize == 1)
        {
            TcpRendezvous.Cancel(nonce);
            return new TcpCollective(0, 1, null, null, options);
        }
        var deadline = DateTime.UtcNow + options.JoinTimeout;
        using var listener = new Socket(rootEp.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // Listen on the interface that reaches the root (for loopback groups: loopback).
        listener.Bind(new IPEndPoint(IsAny(options.Address) ? rootEp.Address : options.Address, 0));
        listener.Listen(4);
        var table = TcpRendezvous.Exchange(rootEp, nonce, rank, worldSize, listener, options.JoinTimeout, () => false);
        if (table.Length != worldSize)
            throw new CollectiveException($"TCP rendezvous returned {table.Length} ranks, expected {worldSize}.");
        int nextRank = (rank + 1) % worldSize, prevRank = (rank + worldSize - 1) % worldSize;

        var acceptTask = Task.Run(() => AcceptFrom(listener, nonce, prevRank, deadline));
        var next = new Socket(table[nextRank].Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Socket prev;
        try
        {
            var ep = new IPEndPoint(table[nextRank].Address, table[nextRank].Port);
            TcpRendezvous.ConnectWithRetry(next, ep, deadline, () => false, $"rank {nextRank}");
            var hello = new byte[24];
            "LVRG"u8.CopyTo(hello);
            nonce.CopyTo(hello, 4);
            BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(20), rank);
            next.Send(hello);
            prev = acceptTask.GetAwaiter().GetResult();
        }
        catch
        {
            next.Dispose();
            throw;
        }
        int ms = TcpRendezvous.Millis(options.OperationTimeout);
        next.SendTimeout = ms;
        prev.ReceiveTimeout = ms;
        return new TcpCollective(rank, worldSize, next, prev, options);
    }

    private static bool IsAny(IPAddress a) => a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any);

    private static Socket AcceptFrom(Socket listener, byte[] nonce, int prevRank, DateTime deadline)
    {
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new CollectiveException($"rank {prevRank} did not connect to this rank within the join timeout.");
            if (!listener.Poll(Math.Min(TcpRendezvous.Millis(left), 500) * 1000, SelectMode.SelectRead))
                continue;
            var c = listener.Accept();
            c.NoDelay = true;
            c.ReceiveTimeout = 10_000;
            try
            {
                var hello = TcpRendezvous.ReadExactly(c, 24);
                if (hello.AsSpan(0, 4).SequenceEqual("LVRG"u8) && hello.AsSpan(4, 16).SequenceEqual(nonce)
                    && BinaryPrimitives.ReadInt32BigEndian(hello.AsSpan(20)) == prevRank)
                    return c;
            }
            catch (SocketException)
            {
            }
            c.Dispose();   // a stray connection: keep waiting for the right peer
        }
    }

    // ------------------------------------------------------------------ operations

    public void AllReduce(Tensor tensor, ReduceOp op) => AllReduce([tensor], op);

    public void AllReduce(IReadOnlyList<Tensor> tensors, ReduceOp op)
    {
        if (tensors.Count == 0) return;
        var dtype = tensors[0].dtype;
        for (int i = 0; i < tensors.Count; i++)
        {
            TensorMemory.RequireContiguous(tensors[i], $"all-reduce tensor {i}");
            if (tensors[i].dtype != dtype)
                throw new ArgumentException($"all-reduce tensors must share one dtype: tensor 0 is {dtype}, tensor {i} is {tensors[i].dtype}.");
        }
        var kind = ReduceKind(dtype);
        if (op == ReduceOp.Average && kind is ScalarType.Int32 or ScalarType.Int64)
            throw new ArgumentException($"an average of {dtype} values is not exact: all-reduce integers with Sum.");
        lock (_gate)
        {
            ThrowIfBroken();
            if (WorldSize == 1)
                return;   // the sum (and mean) of one rank is itself
            long seq = ++_sequence;
            using var scope = NewDisposeScope();
            bool inPlace = tensors.Count == 1 && tensors[0].device_type == DeviceType.CPU && kind == dtype;
            var work = inPlace
                ? tensors[0]
                : (tensors.Count == 1 ? tensors[0].reshape(-1) : cat(tensors.Select(t => t.reshape(-1)).ToArray()))
                    .to(kind, CPU, copy: true).contiguous();
            Guard(() => RingAllReduce(TensorMemory.Address(work, "all-reduce buffer"), work.numel(), kind, op, seq));
            if (!inPlace)
            {
                long offset = 0;
                using var _ = no_grad();
                foreach (var t in tensors)
                {
                    long n = t.numel();
                    t.copy_(work.narrow(0, offset, n).view_as(t));
                    offset += n;
                }
            }
        }
    }

    public void Broadcast(Tensor tensor, int root)
    {
        TensorMemory.RequireContiguous(tensor, "broadcast tensor");
        if (root < 0 || root >= WorldSize)
            throw new ArgumentException($"broadcast root {root} is not a rank of this group of {WorldSize}.");
        lock (_gate)
        {
            ThrowIfBroken();
            if (WorldSize == 1)
                return;
            long seq = ++_sequence;
            using var scope = NewDisposeScope();
            bool inPlace = tensor.device_type == DeviceType.CPU;
            var work = inPlace ? tensor : tensor.to(CPU, copy: true).contiguous();
            Guard(() => RingBroadcast(TensorMemory.Address(work, "broadcast buffer"), TensorMemory.Bytes(work), root, seq));
            if (!inPlace)
                using (no_grad())
                    tensor.copy_(work);
        }
    }

    public void Barrier()
    {
        lock (_gate)
        {
            ThrowIfBroken();
            if (WorldSize == 1)
                return;
            long seq = ++_sequence;
            var one = new long[] { 1 };
            var h = GCHandle.Alloc(one, GCHandleType.Pinned);
            try
            {
                Guard(() => RingAllReduce(h.AddrOfPinnedObject(), 1, ScalarType.Int64, ReduceOp.Sum, seq));
            }
            finally
            {
                h.Free();
            }
            if (one[0] != WorldSize)
                throw new CollectiveException($"barrier counted {one[0]} ranks, expected {WorldSize}.");
        }
    }

    public void Abort(string reason)
    {
        Fail($"aborted: {reason}");
    }

    public void ThrowIfBroken()
    {
        if (_failure is { } f)
            throw new CollectiveException($"TCP collective (rank {Rank} of {WorldSize}) is broken: {f}");
    }

    public void Dispose() => Fail("closed");

    private void Fail(string reason)
    {
        lock (_failLock)
        {
            _failure ??= reason;
        }
        // Closing the sockets unblocks a caller waiting in Receive/Send, and the peers see the ring break.
        _sender?.Stop();
        _next?.Dispose();
        _prev?.Dispose();
    }

    private readonly object _failLock = new();

    /// <summary>Runs one operation; any transport error breaks the group and surfaces as a CollectiveException.</summary>
    private void Guard(Action body)
    {
        try
        {
            body();
        }
        catch (CollectiveException e)
        {
            Fail(e.Message);
            throw;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            string why = _failure ?? (e is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock }
                ? $"no data from rank {(Rank + WorldSize - 1) % WorldSize} within {_options.OperationTimeout.TotalSeconds:0} s"
                : $"connection to a neighbour lost ({e.Message})");
            Fail(why);
            throw new CollectiveException($"TCP collective (rank {Rank} of {WorldSize}) failed: {why}", e);
        }
    }

    // ------------------------------------------------------------------ ring algorithms

    private static ScalarType ReduceKind(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 or ScalarType.Float64 or ScalarType.Int32 or ScalarType.Int64 => dtype,
        ScalarType.BFloat16 or ScalarType.Float16 => ScalarType.Float32,
        _ => throw new NotSupportedException($"all-reduce of {dtype} tensors is not supported (use float32, float64, int32, int64, bf16 or fp16)."),
    };

    private enum OpCode : uint { AllReduceScatter = 1, AllReduceGather = 2, Broadcast = 3 }

    private void RingAllReduce(IntPtr data, long count, ScalarType kind, ReduceOp op, long seq)
    {
        int n = WorldSize, r = Rank;
        int es = TensorMemory.ElementSize(kind);
        long Start(int chunk) => count * chunk / n;
        long Len(int chunk) => Start(chunk + 1) - Start(chunk);
        long maxChunk = Enumerable.Range(0, n).Max(c => Len(c));
        var scratch = GC.AllocateUninitializedArray<byte>((int)Math.Min(int.MaxValue, maxChunk * es), pinned: true);
        if (maxChunk * es > int.MaxValue)
            throw new NotSupportedException("TCP all-reduce chunks over 2 GiB: use more ranks or NCCL.");

        // Reduce-scatter: after n-1 steps rank r holds the full sum of chunk (r+1) mod n.
        for (int s = 0; s < n - 1; s++)
        {
            int send = Mod(r - s, n), recv = Mod(r - s - 1, n);
            _sender!.Post(Header(OpCode.AllReduceScatter, seq, s, Len(send) * es), data + (nint)(Start(send) * es), Len(send) * es);
            ReceiveInto(OpCode.AllReduceScatter, seq, s, scratch, Len(recv) * es);
            AddInto(kind, data + (nint)(Start(recv) * es), scratch, Len(recv));
            _sender.Wait();
        }
        int owned = Mod(r + 1, n);
        if (op == ReduceOp.Average)
            DivideInPlace(kind, data + (nint)(Start(owned) * es), Len(owned), n);

        // All-gather: pass the finished chunks around the ring; every rank ends with the owners' bytes.
        for (int s = 0; s < n - 1; s++)
        {
            int send = Mod(r + 1 - s, n), recv = Mod(r - s, n);
            _sender!.Post(Header(OpCode.AllReduceGather, seq, s, Len(send) * es), data + (nint)(Start(send) * es), Len(send) * es);
            ReceiveInto(OpCode.AllReduceGather, seq, s, data + (nint)(Start(recv) * es), Len(recv) * es);
            _sender.Wait();
        }
    }

    private void RingBroadcast(IntPtr data, long bytes, int root, long seq)
    {
        int n = WorldSize;
        int position = Mod(Rank - root, n);          // 0 = root, n-1 = the last rank in the chain
        long pieces = Math.Max(1, (bytes + BroadcastPiece - 1) / BroadcastPiece);
        for (long k = 0; k < pieces; k++)
        {
            long off = k * BroadcastPiece, len = Math.Min(BroadcastPiece, bytes - off);
            if (position != 0)
                ReceiveInto(OpCode.Broadcast, seq, (int)k, data + (nint)off, len);
            if (position != n - 1)
                _sender!.Post(Header(OpCode.Broadcast, seq, (int)k, len), data + (nint)off, len);
        }
        _sender!.Wait();
    }

    private static int Mod(int a, int n) => ((a % n) + n) % n;

    private static byte[] Header(OpCode op, long seq, int step, long bytes)
    {
        var h = new byte[HeaderBytes];
        BinaryPrimitives.WriteUInt32BigEndian(h, FrameMagic);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), (uint)op << 24 | (uint)step & 0xFFFFFF);
        BinaryPrimitives.WriteInt64BigEndian(h.AsSpan(8), seq);
        BinaryPrimitives.WriteInt64BigEndian(h.AsSpan(16), bytes);
        return h;
    }

    private readonly byte[] _header = new byte[HeaderBytes];

    private unsafe void ReceiveInto(OpCode op, long seq, int step, byte[] target, long bytes)
    {
        fixed (byte* p = target)
            ReceiveInto(op, seq, step, (IntPtr)p, bytes);
    }

    private unsafe void ReceiveInto(OpCode op, long seq, int step, IntPtr target, long bytes)
    {
        ReceiveExactly(new Span<byte>(_header));
        var expect = Header(op, seq, step, bytes);
        if (!_header.AsSpan().SequenceEqual(expect))
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(_header);
            uint opStep = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(4));
            long theirSeq = BinaryPrimitives.ReadInt64BigEndian(_header.AsSpan(8));
            long theirBytes = BinaryPrimitives.ReadInt64BigEndian(_header.AsSpan(16));
            throw new CollectiveException(magic != FrameMagic
                ? "received bytes that are not a collective frame (stream out of sync)"
                : $"ranks disagree: rank {Mod(Rank - 1, WorldSize)} sent operation {(OpCode)(opStep >> 24)} #{theirSeq} with {theirBytes} bytes, this rank expected {op} #{seq} with {bytes} bytes (every rank must call the same collectives with the same sizes, in the same order)");
        }
        long done = 0;
        while (done < bytes)
        {
            int len = (int)Math.Min(1 << 30, bytes - done);
            ReceiveExactly(new Span<byte>((byte*)target + done, len));
            done += len;
        }
    }

    private void ReceiveExactly(Span<byte> buffer)
    {
        var prev = _prev ?? throw new InvalidOperationException("no ring");
        while (buffer.Length > 0)
        {
            int r = prev.Receive(buffer);
            if (r == 0)
                throw new CollectiveException($"rank {Mod(Rank - 1, WorldSize)} closed its connection (process ended or group aborted)");
            buffer = buffer[r..];
        }
    }

    private static unsafe void AddInto(ScalarType kind, IntPtr dst, byte[] src, long count)
    {
        fixed (byte* s = src)
        {
            switch (kind)
            {
                case ScalarType.Float32: Add(new Span<float>((void*)dst, (int)count), new ReadOnlySpan<float>(s, (int)count)); break;
                case ScalarType.Float64: Add(new Span<double>((void*)dst, (int)count), new ReadOnlySpan<double>(s, (int)count)); break;
                case ScalarType.Int32: Add(new Span<int>((void*)dst, (int)count), new ReadOnlySpan<int>(s, (int)count)); break;
                case ScalarType.Int64: Add(new Span<long>((void*)dst, (int)count), new ReadOnlySpan<long>(s, (int)count)); break;
                default: throw new NotSupportedException(kind.ToString());
            }
        }
    }

    private static void Add<T>(Span<T> dst, ReadOnlySpan<T> src) where T : unmanaged, INumber<T>
    {
        int i = 0, w = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i <= dst.Length - w; i += w)
                (new Vector<T>(dst[i..]) + new Vector<T>(src[i..])).CopyTo(dst[i..]);
        for (; i < dst.Length; i++)
            dst[i] += src[i];
    }

    private static unsafe void DivideInPlace(ScalarType kind, IntPtr data, long count, int n)
    {
        if (kind == ScalarType.Float32)
        {
            var s = new Span<float>((void*)data, (int)count);
            for (int i = 0; i < s.Length; i++) s[i] /= n;
        }
        else
        {
            var s = new Span<double>((void*)data, (int)count);
            for (int i = 0; i < s.Length; i++) s[i] /= n;
        }
    }

    /// <summary>
    /// Sends on its own thread so a rank can send to its next neighbour while it receives from its previous
    /// one (with blocking sockets on one thread, a full ring would deadlock once the kernel buffers fill).
    /// </summary>
    private sealed class Sender
    {
        private readonly Socket _socket;
        private readonly BlockingCollection<(byte[] Header, IntPtr Data, long Bytes)> _queue = new();
        private readonly SemaphoreSlim _done = new(0);
        private int _pending;
        private volatile Exception? _error;
        private readonly Thread _thread;

        public Sender(Socket socket, string name)
        {
            _socket = socket;
            _thread = new Thread(Run) { IsBackground = true, Name = name };
            _thread.Start();
        }

        public void Post(byte[] header, IntPtr data, long bytes)
        {
            if (_error is { } e) throw new IOException("send failed: " + e.Message, e);
            Interlocked.Increment(ref _pending);
            _queue.Add((header, data, bytes));
        }

        /// <summary>Waits until everything posted has been handed to the kernel.</summary>
        public void Wait()
        {
            while (Volatile.Read(ref _pending) > 0)
            {
                _done.Wait(200);
                if (_error is { } e) throw new IOException("send failed: " + e.Message, e);
            }
        }

        public void Stop()
        {
            _error ??= new ObjectDisposedException("collective closed");
            _queue.CompleteAdding();
            _done.Release();
        }

        private unsafe void Run()
        {
            try
            {
                foreach (var (header, data, bytes) in _queue.GetConsumingEnumerable())
                {
                    _socket.Send(header);
                    long done = 0;
                    while (done < bytes)
                    {
                        int len = (int)Math.Min(1 << 30, bytes - done);
                        int sent = _socket.Send(new ReadOnlySpan<byte>((byte*)data + done, len));
                        done += sent;
                    }
                    Interlocked.Decrement(ref _pending);
                    _done.Release();
                }
            }
            catch (Exception e)
            {
                _error = e;
                _done.Release();
            }
        }
    }
}
