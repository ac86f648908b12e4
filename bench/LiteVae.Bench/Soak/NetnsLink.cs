using System.Diagnostics;

namespace LiteVae.Bench.Soak;

/// <summary>
/// A network namespace joined to this host by a veth pair, so one node of the soak can really fall off the
/// network: the host side keeps <see cref="HostIp"/> (every other node listens there), the node inside listens
/// on <see cref="NsIp"/>, and <see cref="Cut"/> takes the namespace's end of the link down (packets stop both
/// ways, connections stay open, as with a pulled cable). Needs root and iproute2; otherwise the soak falls back
/// to SIGSTOP.
/// </summary>
internal sealed class NetnsLink : IDisposable
{
    public const string HostIp = "10.231.0.1", NsIp = "10.231.0.2";
    private readonly string _ns, _hostDev, _nsDev;

    private NetnsLink(string ns, string hostDev, string nsDev) => (_ns, _hostDev, _nsDev) = (ns, hostDev, nsDev);

    public static NetnsLink? TryCreate(Action<string> log)
    {
        if (Environment.UserName != "root") return null;
        string id = (Environment.ProcessId % 10000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var link = new NetnsLink($"litevae-soak-{id}", $"lvsh{id}", $"lvsn{id}");
        string[][] setup =
        [
            ["netns", "add", link._ns],
            ["link", "add", link._hostDev, "type", "veth", "peer", "name", link._nsDev],
            ["link", "set", link._nsDev, "netns", link._ns],
            ["addr", "add", $"{HostIp}/30", "dev", link._hostDev],
            ["link", "set", link._hostDev, "up"],
            ["netns", "exec", link._ns, "ip", "addr", "add", $"{NsIp}/30", "dev", link._nsDev],
            ["netns", "exec", link._ns, "ip", "link", "set", link._nsDev, "up"],
            ["netns", "exec", link._ns, "ip", "link", "set", "lo", "up"],
        ];
        foreach (var step in setup)
        {
            if (Ip(step) == 0) continue;
            log($"network namespace unavailable (ip {string.Join(' ', step)} failed): the cut-off falls back to SIGSTOP");
            link.Dispose();
            return null;
        }
        return link;
    }

    /// <summary>The command line that runs <paramref name="exe"/> inside the namespace.</summary>
    public (string Exe, string[] Args) Inside(string exe, IEnumerable<string> args) => ("ip", ["netns", "exec", _ns, exe, .. args]);

    public void Cut() => Ip(["netns", "exec", _ns, "ip", "link", "set", _nsDev, "down"]);

    public void Restore() => Ip(["netns", "exec", _ns, "ip", "link", "set", _nsDev, "up"]);

    public void Dispose()
    {
        Ip(["link", "del", _hostDev]);
        Ip(["netns", "del", _ns]);
    }

    private static int Ip(string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }
    }
}
