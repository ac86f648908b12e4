using System.Net;
using System.Net.Sockets;
using LiteVae.Host.Config;

namespace LiteVae.Host.Security;

/// <summary>
/// Without TLS, Akka.Remote accepts any TCP peer and believes whatever it says, so a node must not be
/// reachable from other machines unless the user has said, explicitly, that this is what they want.
/// </summary>
public static class BindPolicy
{
    /// <param name="hostname">What remoting binds to (<c>litevae.node.hostname</c>; "" or 0.0.0.0 = every interface).</param>
    public static void Check(string hostname, bool tls, bool insecure, string source)
    {
        if (tls || insecure || IsLoopback(hostname)) return;
        throw new ConfigException(
            $"{source}: refusing to listen on '{(hostname == "" ? "all interfaces" : hostname)}' without TLS: anyone who can reach the port could join " +
            "the cluster or stop it. Turn TLS on (include \"tls.conf\" and set litevae.tls.*; see `litevae certs --help`), or bind to 127.0.0.1, " +
            "or pass --insecure if this network is private and you accept the risk.");
    }

    /// <summary>True when every address <paramref name="hostname"/> stands for is a loopback address.</summary>
    public static bool IsLoopback(string hostname)
    {
        if (string.IsNullOrWhiteSpace(hostname)) return false;
        if (IPAddress.TryParse(hostname.Trim('[', ']'), out var ip)) return IPAddress.IsLoopback(ip);
        if (string.Equals(hostname, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        try
        {
            var addresses = Dns.GetHostAddresses(hostname);
            return addresses.Length > 0 && addresses.All(IPAddress.IsLoopback);
        }
        catch (SocketException)
        {
            return false;   // unknown name: not provably local
        }
    }
}
