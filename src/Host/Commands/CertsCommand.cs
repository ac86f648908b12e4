using System.CommandLine;
using LiteVae.Host.Security;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae certs init</c>: a certificate authority for one cluster. <c>litevae certs issue &lt;name&gt;</c>:
/// a node (or, with --client, a CLI user) certificate signed by it. Nodes accept only peers whose
/// certificates chain to this CA (mutual TLS); see hocon/tls.conf.
/// </summary>
internal static class CertsCommand
{
    public static Command Create()
    {
        var command = new Command("certs", "Create the cluster's certificate authority and the node/client certificates for mutual TLS.");
        command.Subcommands.Add(Init());
        command.Subcommands.Add(Issue());
        return command;
    }

    private static Option<string> Dir() => new("--dir") { Description = "Folder of the CA and certificates", DefaultValueFactory = _ => "certs" };

    private static Command Init()
    {
        var dir = Dir();
        var name = new Option<string>("--name") { Description = "Cluster name, recorded in the CA's subject", DefaultValueFactory = _ => "litevae" };
        var days = new Option<int>("--days") { Description = "Validity of the CA in days", DefaultValueFactory = _ => 3650 };
        var force = new Option<bool>("--force") { Description = "Replace an existing CA (every issued certificate stops working)" };
        var command = new Command("init", "Create the cluster CA: ca.crt (public, goes to every host) and ca.key (private, stays here).");
        foreach (var o in new Option[] { dir, name, days, force }) command.Options.Add(o);
        Cli.SetAction(command, parse =>
        {
            int d = parse.GetValue(days);
            if (d is < 1 or > 36500) throw new ArgumentException($"--days {d}: expected 1 to 36500.");
            string folder = parse.GetValue(dir)!;
            using var ca = CertificateAuthority.Create(parse.GetValue(name)!, DateTimeOffset.UtcNow, TimeSpan.FromDays(d));
            var (cert, key) = CertificateFiles.WriteCa(ca, folder, parse.GetValue(force));
            Console.WriteLine($"""
                created the cluster CA '{ca.Certificate.Subject}', valid until {ca.Certificate.NotAfter:yyyy-MM-dd}:
                  {cert}  CA certificate (public): copy it to every host and every CLI user
                  {key}  CA private key (0600): keep it on this machine only; whoever has it can add members
                next, for each node:  litevae certs issue <node-name> --host <its address> --dir {folder}
                and for each CLI user: litevae certs issue <user> --client --dir {folder}
                """);
            return 0;
        });
        return command;
    }

    private static Command Issue()
    {
        var name = new Argument<string>("name") { Description = "Node or user name (letters, digits, '.', '-', '_'); becomes <name>.p12" };
        var dir = Dir();
        var client = new Option<bool>("--client") { Description = "A CLI client certificate (can send commands, cannot act as a node)" };
        var hosts = new Option<string[]>("--host")
        {
            Description = "Host name or IP address the node is reached at (repeatable); recorded in the certificate",
            AllowMultipleArgumentsPerToken = true,
        };
        var days = new Option<int>("--days") { Description = "Validity in days", DefaultValueFactory = _ => 825 };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing <name>.p12" };
        var command = new Command("issue", "Issue a node certificate (or a client certificate with --client) signed by the cluster CA.");
        command.Arguments.Add(name);
        foreach (var o in new Option[] { dir, client, hosts, days, force }) command.Options.Add(o);
        Cli.SetAction(command, parse =>
        {
            int d = parse.GetValue(days);
            if (d is < 1 or > 3650) throw new ArgumentException($"--days {d}: expected 1 to 3650.");
            string folder = parse.GetValue(dir)!, who = parse.GetValue(name)!;
            var kind = parse.GetValue(client) ? CertificateKind.Client : CertificateKind.Node;
            var hostList = parse.GetValue(hosts) ?? [];
            if (kind == CertificateKind.Client && hostList.Length > 0)
                throw new ArgumentException("--host is for node certificates; a --client certificate is not tied to a host.");
            using var ca = CertificateAuthority.Load(folder);
            using var issued = ca.Issue(who, kind, hostList, DateTimeOffset.UtcNow, TimeSpan.FromDays(d));
            var (p12, crt) = CertificateFiles.WriteIssued(issued, who, folder, parse.GetValue(force));
            string caPath = Path.Combine(folder, CertificateAuthority.CaCertificateFile);
            Console.WriteLine($"issued {(kind == CertificateKind.Node ? "node" : "client")} certificate '{issued.Subject}', valid until {issued.NotAfter:yyyy-MM-dd}:");
            Console.WriteLine($"  {p12}  certificate + private key (0600): copy it, with {caPath}, to {(kind == CertificateKind.Node ? $"the host of '{who}' only" : $"the user '{who}' only")}");
            Console.WriteLine($"  {crt}  the certificate alone (public)");
            if (kind == CertificateKind.Node)
                Console.WriteLine($"""
                    on that host (keep the file mode 0600, e.g. scp -p {p12} {caPath} <host>:litevae/certs/), start the node with:
                      litevae node --hocon hocon/<role>.conf --hocon hocon/tls.conf --set litevae.tls.certificate=certs/{who}.p12 --set litevae.node.hostname=<its address> ...
                    (hocon/tls.conf switches TLS on with certs/ca.crt; or put the litevae.tls keys in the node's own HOCON)
                    """);
            else
                Console.WriteLine($"""
                    the user passes them to every command, e.g.:
                      litevae status --cluster <host:port> --tls-ca {caPath} --tls-cert {p12}
                    """);
            return 0;
        });
        return command;
    }
}
