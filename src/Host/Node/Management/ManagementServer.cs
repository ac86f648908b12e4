using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Http.Dsl;
using Akka.Management.Dsl;
using Ceen.Httpd;

namespace LiteVae.Host.Node.Management;

/// <summary>
/// Serves Akka.Management's routes (<see cref="AkkaManagement.Routes()"/>: our health routes and Cluster Bootstrap's
/// contact point) on an HTTP listener this node binds itself.
/// Why not <c>AkkaManagement.Start()</c>: its HTTP shim (Akka.Http.Shim 1.5.73) was built against Ceen.Httpd 0.9.9,
/// whose <c>HttpServer.ListenAsync</c> took an IPEndPoint; the only Ceen.Httpd we can restore is 0.9.10, where it takes
/// an EndPoint, so <c>Start()</c> fails with MissingMethodException. Binding the same routes with the same router
/// (<see cref="AkkaRouter"/>) through 0.9.10's signature is what the shim does, and is the path Akka.Management
/// documents for binding its routes yourself (ClusterBootstrap learns its contact point from <c>Routes()</c>).
/// Delete this class and call <c>AkkaManagement.Get(system).Start()</c> once a matching Akka.Http.Shim is served.
/// </summary>
internal static class ManagementServer
{
    /// <summary>Binds <paramref name="bindHost"/>:<paramref name="port"/> and serves until the ActorSystem terminates.</summary>
    /// <exception cref="SocketException">The address cannot be bound (in use, not an address of this host).</exception>
    public static async Task Start(ActorSystem system, string bindHost, int port)
    {
        var routes = AkkaManagement.Get(system).Routes();
        var ip = IPAddress.TryParse(bindHost, out var parsed) ? parsed
            : (await Dns.GetHostAddressesAsync(bindHost)).First(a => a.AddressFamily == AddressFamily.InterNetwork);
        var endpoint = new IPEndPoint(ip, port);

        // Ceen binds inside ListenAsync and would only report a taken port through the task it returns, after the
        // node had announced itself; binding it ourselves first (as Ceen does: without SO_REUSEADDR) gives the node
        // a clear error at start instead.
        await WaitUntilFree(endpoint, port);
        var stop = new CancellationTokenSource();
        var config = new ServerConfig { Router = new AkkaRouter(system, routes) };
        var serving = HttpServer.ListenAsync(endpoint, false, config, stop.Token);
        if (serving.IsFaulted) await serving;   // throws the bind error
        // Serve to the very end of a clean stop, so /health/ready keeps saying "shutting down" while the final
        // checkpoint is written (Akka.Management's own binding unbinds earlier, before cluster shutdown).
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseActorSystemTerminate, "litevae-management-http", () =>
        {
            stop.Cancel();
            return Task.FromResult(Akka.Done.Instance);
        });
    }

    /// <summary>
    /// Returns once <paramref name="endpoint"/> can be bound. A port someone listens on fails at once. A port that only
    /// holds connections of an earlier process in TIME_WAIT (a node restarted on its port right after it died: the
    /// probes' connections linger for a minute, and Ceen's listener does not set SO_REUSEADDR, so nothing may bind
    /// the port until they expire) is waited for, up to <see cref="TimeWaitLimit"/>, with one line saying why.
    /// </summary>
    private static async Task WaitUntilFree(IPEndPoint endpoint, int port)
    {
        var until = DateTime.UtcNow + TimeWaitLimit;
        bool told = false;
        while (true)
        {
            try
            {
                using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(endpoint);
                probe.Listen();
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && DateTime.UtcNow < until)
            {
                if (await Listening(endpoint)) throw;   // a real clash: fail at once
            }
            if (!told)
                Console.WriteLine($"management port {port}: waiting for the connections of an earlier process to expire (TIME_WAIT, up to a minute)");
            told = true;
            await Task.Delay(1000);
        }
    }

    /// <summary>Linux keeps TIME_WAIT for 60 s; a little more for a loaded machine.</summary>
    private static readonly TimeSpan TimeWaitLimit = TimeSpan.FromSeconds(75);

    private static async Task<bool> Listening(IPEndPoint endpoint)
    {
        var target = endpoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : endpoint.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : endpoint.Address;
        using var client = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync(new IPEndPoint(target, endpoint.Port), timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}
