using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace LiteVae.Model.Distributed;

/// <summary>Where a rank listens for its ring neighbour.</summary>
internal sealed record RankEndpoint(IPAddress Address, int Port);

/// <summary>
/// The bootstrap of a TCP group: a one-shot server ("root") that learns every rank's listening address and
/// tells all of them the full table, after which ranks connect to each other directly (the ring) and the
/// root exits. The group id is the root's address plus a random nonce (so a rank of an old generation
/// can never join a new group by mistake).
///
/// Wire format (all integers big-endian):
///   rank → root  "LVRZ" nonce[16] rank:i32 world:i32 addrLen:u8 addr[addrLen] port:i32
///   root → rank  0:u8 world:i32 { addrLen:u8 addr port:i32 } × world      (success)
///                1:u8 len:i32 utf8[len]                                   (failure, with the reason)
/// </summary>
internal static class TcpRendezvous
{
    private static readonly byte[] GroupMagic = "LVT1"u8.ToArray();
    private static readonly byte[] HelloMagic = "LVRZ"u8.ToArray();
    private static readonly ConcurrentDictionary<string, Root> Roots = new();

    public static CollectiveGroupId CreateGroupId(IPAddress address, TimeSpan lifetime)
    {
        var nonce = RandomNumberGenerator.GetBytes(16);
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(address, 0));
            listener.Listen(256);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new CollectiveException($"cannot listen on {address} for the TCP rendezvous: {e.Message}. Set the collective address to an interface of this machine.", e);
        }
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var root = new Root(listener, nonce, lifetime);
        Roots[Convert.ToHexString(nonce)] = root;
        root.Start();
        var addr = address.GetAddressBytes();
        var bytes = new byte[4 + 16 + 4 + 1 + addr.Length];
        GroupMagic.CopyTo(bytes, 0);
        nonce.CopyTo(bytes, 4);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(20), port);
        bytes[24] = (byte)addr.Length;
        addr.CopyTo(bytes, 25);
        return new CollectiveGroupId(TcpCollective.BackendName, bytes);
    }

    public static (byte[] Nonce, IPEndPoint Root) Parse(CollectiveGroupId id)
    {
        var b = id.Bytes;
        if (id.Backend != TcpCollective.BackendName || b.Length < 26 || !b.AsSpan(0, 4).SequenceEqual(GroupMagic) || b[24] + 25 != b.Length)
            throw new ArgumentException($"not a TCP collective group id (backend '{id.Backend}', {b.Length} bytes).");
        var nonce = b[4..20];
        int port = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20));
        var addr = new IPAddress(b.AsSpan(25, b[24]));
        return (nonce, new IPEndPoint(addr, port));
    }

    /// <summary>Stops the root of a group that will not need it (a group of one).</summary>
    public static void Cancel(byte[] nonce)
    {
        if (Roots.TryRemove(Convert.ToHexString(nonce), out var root))
            root.Stop();
    }

    /// <summary>Rank side: registers this rank's ring address and returns every rank's.</summary>
    public static RankEndpoint[] Exchange(IPEndPoint rootEndPoint, byte[] nonce, int rank, int world, Socket ringListener, TimeSpan timeout, Func<bool> cancelled)
    {
        using var s = new Socket(rootEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var deadline = DateTime.UtcNow + timeout;
        ConnectWithRetry(s, rootEndPoint, deadline, cancelled, $"the rendezvous root at {rootEndPoint}");
        // Wait a little longer than the root lives, so its explanation (which ranks are missing) arrives first.
        s.ReceiveTimeout = s.SendTimeout = Millis(deadline - DateTime.UtcNow + TimeSpan.FromSeconds(5));
        var ringEp = (IPEndPoint)ringListener.LocalEndPoint!;
        // Advertise the local address this connection uses: it routes to the root, so peers can reach it too.
        var myAddr = ((IPEndPoint)s.LocalEndPoint!).Address.GetAddressBytes();
        var hello = new byte[4 + 16 + 4 + 4 + 1 + myAddr.Length + 4];
        HelloMagic.CopyTo(hello, 0);
        nonce.CopyTo(hello, 4);
        BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(20), rank);
        BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(24), world);
        hello[28] = (byte)myAddr.Length;
        myAddr.CopyTo(hello, 29);
        BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(29 + myAddr.Length), ringEp.Port);
        try
        {
            s.Send(hello);
            var status = ReadExactly(s, 1)[0];
            if (status != 0)
            {
                int len = BinaryPrimitives.ReadInt32BigEndian(ReadExactly(s, 4));
                throw new CollectiveException("TCP rendezvous refused rank " + rank + ": " + Encoding.UTF8.GetString(ReadExactly(s, len)));
            }
            int n = BinaryPrimitives.ReadInt32BigEndian(ReadExactly(s, 4));
            var table = new RankEndpoint[n];
            for (int i = 0; i < n; i++)
            {
                int alen = ReadExactly(s, 1)[0];
                var a = new IPAddress(ReadExactly(s, alen));
                table[i] = new RankEndpoint(a, BinaryPrimitives.ReadInt32BigEndian(ReadExactly(s, 4)));
            }
            return table;
        }
        catch (SocketException e)
        {
            throw new CollectiveException($"TCP rendezvous at {rootEndPoint} failed for rank {rank} of {world}: {e.Message} (did every rank join within {timeout.TotalSeconds:0} s?).", e);
        }
    }

    internal static void ConnectWithRetry(Socket s, IPEndPoint ep, DateTime deadline, Func<bool> cancelled, string what)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            if (cancelled())
                throw new CollectiveException($"aborted while connecting to {what}.");
            try
            {
                using var cts = new CancellationTokenSource(Clamp(deadline - DateTime.UtcNow, TimeSpan.FromSeconds(2)));
                s.ConnectAsync(ep, cts.Token).AsTask().GetAwaiter().GetResult();
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                if (DateTime.UtcNow >= deadline)
                    throw new CollectiveException($"could not connect to {what} ({ep}) before the join timeout: {e.Message}.", e);
                Thread.Sleep(delay);
                delay = TimeSpan.FromMilliseconds(Math.Min(500, delay.TotalMilliseconds * 2));
            }
        }
    }

    private static TimeSpan Clamp(TimeSpan left, TimeSpan max) =>
        left <= TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left < max ? left : max;

    internal static int Millis(TimeSpan t) => (int)Math.Clamp(t.TotalMilliseconds, 1, int.MaxValue);

    internal static byte[] ReadExactly(Socket s, int n)
    {
        var buf = new byte[n];
        int got = 0;
        while (got < n)
        {
            int r = s.Receive(buf, got, n - got, SocketFlags.None);
            if (r == 0)
                throw new SocketException((int)SocketError.ConnectionReset);
            got += r;
        }
        return buf;
    }

    /// <summary>The one-shot root server (a background thread).</summary>
    private sealed class Root(Socket listener, byte[] nonce, TimeSpan lifetime)
    {
        private volatile bool _stopped;

        public void Start() => new Thread(Serve) { IsBackground = true, Name = "litevae-tcp-rendezvous" }.Start();

        public void Stop()
        {
            _stopped = true;
            listener.Dispose();
        }

        private void Serve()
        {
            var deadline = DateTime.UtcNow + lifetime;
            var joined = new SortedDictionary<int, (Socket Socket, RankEndpoint Ep)>();
            int world = -1;
            string? failure = null;
            try
            {
                while (!_stopped && (world < 0 || joined.Count < world))
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero)
                    {
                        failure = world < 0
                            ? "no rank joined in time"
                            : $"ranks {string.Join(", ", Enumerable.Range(0, world).Where(r => !joined.ContainsKey(r)))} of {world} did not join within {lifetime.TotalSeconds:0} s";
                        break;
                    }
                    if (!listener.Poll(Math.Min(Millis(left), 500) * 1000, SelectMode.SelectRead))
                        continue;
                    var c = listener.Accept();
                    c.NoDelay = true;
                    c.ReceiveTimeout = c.SendTimeout = 10_000;
                    try
                    {
                        var head = ReadExactly(c, 29);
                        if (!head.AsSpan(0, 4).SequenceEqual(HelloMagic) || !head.AsSpan(4, 16).SequenceEqual(nonce))
                        {
                            Refuse(c, "wrong group id (a rank of another group or generation)");
                            continue;
                        }
                        int rank = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(20));
                        int w = BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(24));
                        var addr = new IPAddress(ReadExactly(c, head[28]));
                        int port = BinaryPrimitives.ReadInt32BigEndian(ReadExactly(c, 4));
                        if (world < 0) world = w;
                        if (w != world || rank < 0 || rank >= world || joined.ContainsKey(rank))
                        {
                            Refuse(c, w != world
                                ? $"rank {rank} says the group has {w} ranks, an earlier rank said {world}"
                                : joined.ContainsKey(rank) ? $"rank {rank} joined twice" : $"rank {rank} is outside 0..{world - 1}");
                            continue;
                        }
                        joined[rank] = (c, new RankEndpoint(addr, port));
                    }
                    catch (SocketException)
                    {
                        c.Dispose();   // a half-open stray connection; keep serving
                    }
                }
                if (failure is null && !_stopped)
                {
                    var reply = new List<byte> { 0 };
                    reply.AddRange(BigEndian(world));
                    foreach (var (_, (_, ep)) in joined)
                    {
                        var a = ep.Address.GetAddressBytes();
                        reply.Add((byte)a.Length);
                        reply.AddRange(a);
                        reply.AddRange(BigEndian(ep.Port));
                    }
                    var bytes = reply.ToArray();
                    foreach (var (_, (s, _)) in joined)
                        try { s.Send(bytes); } catch (SocketException) { /* that rank's join fails on its own timeout */ }
                }
                else if (failure is not null)
                {
                    foreach (var (_, (s, _)) in joined)
                        Refuse(s, failure);
                }
            }
            catch (ObjectDisposedException)
            {
                // stopped
            }
            finally
            {
                foreach (var (_, (s, _)) in joined)
                    s.Dispose();
                listener.Dispose();
                Roots.TryRemove(Convert.ToHexString(nonce), out _);
            }
        }

        private static byte[] BigEndian(int v)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, v);
            return b;
        }

        private static void Refuse(Socket c, string reason)
        {
            try
            {
                var msg = Encoding.UTF8.GetBytes(reason);
                var b = new byte[5 + msg.Length];
                b[0] = 1;
                BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(1), msg.Length);
                msg.CopyTo(b, 5);
                c.Send(b);
            }
            catch (SocketException)
            {
            }
            finally
            {
                c.Dispose();
            }
        }
    }
}
