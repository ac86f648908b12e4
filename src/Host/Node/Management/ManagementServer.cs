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
        // node had announced itself; a listener of our own first gives the node a clear error at start instead.
        using (var probe = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
            probe.Bind(endpoint);

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
}
