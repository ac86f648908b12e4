using System.Net;
using System.Net.Sockets;

namespace LiteVae.Host.Tests.Security;

/// <summary>
/// A TCP forwarder on loopback that keeps a copy of every byte it carries, in both directions: what a
/// packet capture of the port would see.
/// </summary>
public sealed class TapProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _cts = new();
    private readonly MemoryStream _captured = new();
    private readonly List<Task> _pumps = [];
    private readonly Task _accept;

    public int Port { get; }

    public TapProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoop();
    }

    public byte[] Captured()
    {
        lock (_captured) return _captured.ToArray();
    }

    private async Task AcceptLoop()
    {
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var inbound = await _listener.AcceptTcpClientAsync(_cts.Token);
                var outbound = new TcpClient();
                await outbound.ConnectAsync(IPAddress.Loopback, _target, _cts.Token);
                lock (_pumps)
                {
                    _pumps.Add(Pump(inbound, outbound));
                    _pumps.Add(Pump(outbound, inbound));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    private async Task Pump(TcpClient from, TcpClient to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            var src = from.GetStream();
            var dst = to.GetStream();
            int n;
            while ((n = await src.ReadAsync(buffer, _cts.Token)) > 0)
            {
                lock (_captured) _captured.Write(buffer, 0, n);
                await dst.WriteAsync(buffer.AsMemory(0, n), _cts.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
        finally
        {
            from.Close();
            to.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Stop();
        try { await _accept; } catch { /* cancelled */ }
        Task[] pumps;
        lock (_pumps) pumps = _pumps.ToArray();
        await Task.WhenAll(pumps).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
    }
}
