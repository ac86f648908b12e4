using System.CommandLine;
using LiteVae.Host.Node;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Security;
using LiteVae.Host.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary>Options every command to a running cluster shares.</summary>
internal static class ClusterCommandOptions
{
    public static Option<string> Cluster() => new("--cluster")
    {
        Description = "host:port of any node of the running cluster (litevae node prints its address)",
        Required = true,
    };

    public static Option<int> Timeout(int seconds) => new("--timeout")
    {
        Description = "seconds to wait for the answer",
        DefaultValueFactory = _ => seconds,
    };

    /// <summary>
    /// A verb that sends one request to a running cluster (--cluster, --timeout, --otlp and the credentials) and
    /// prints the answer: <paramref name="ask"/> gets the connected client, the timeout and the <c>traceparent</c>
    /// to put into its request (the command's span; null when nothing is exported).
    /// </summary>
    public static Command Request(string name, string description, int timeoutSeconds, Func<ClusterClient, TimeSpan, string?, Task> ask) =>
        Request(name, description, timeoutSeconds, (client, timeout, traceParent, _) => ask(client, timeout, traceParent));

    /// <summary>The same, for a verb with options of its own (<paramref name="extra"/>, read from the parse result).</summary>
    public static Command Request(string name, string description, int timeoutSeconds, Func<ClusterClient, TimeSpan, string?, ParseResult, Task> ask,
        params Option[] extra)
    {
        var cluster = Cluster();
        var timeout = Timeout(timeoutSeconds);
        var otlp = TelemetryOptions.Otlp();
        var command = new Command(name, description);
        command.Options.Add(cluster);
        command.Options.Add(timeout);
        command.Options.Add(otlp);
        foreach (var o in extra) command.Options.Add(o);
        var auth = ClientAuthOptions.AddTo(command);
        Cli.SetAction(command, parse =>
        {
            string address = parse.GetValue(cluster)!;
            // The command's span is the root of its trace: the coordinator's handling of the request (and what it
            // starts: a checkpoint's snapshot and write) becomes its child, in the node's process.
            using var trace = CommandTrace.Start("cli", name, parse.GetValue(otlp), [new(TelemetryTags.Peer, address)]);
            return trace.Run(() => Run(parse, address, TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse), trace.TraceParent, ask)
                .GetAwaiter().GetResult());
        });
        return command;
    }

    private static async Task<int> Run(ParseResult parse, string address, TimeSpan timeout, ClientCredentials credentials, string? traceParent,
        Func<ClusterClient, TimeSpan, string?, ParseResult, Task> ask)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        await ask(client, timeout, traceParent, parse);
        return 0;
    }
}

/// <summary>
/// How a command proves it may talk to the cluster: a client certificate (--tls-ca + --tls-cert) for a
/// cluster with TLS, or the run token (--run-dir, which reads &lt;run-dir&gt;/run-token, or --token) for a
/// loopback cluster without.
/// </summary>
internal sealed class ClientAuthOptions
{
    private readonly Option<string?> _runDir = new("--run-dir") { Description = "the cluster's run directory: its run-token authorizes the command (clusters without TLS)" };
    private readonly Option<string?> _token = new("--token") { Description = "the run token (the content of <run-dir>/run-token) instead of --run-dir" };
    private readonly Option<string?> _tlsCa = new("--tls-ca") { Description = "the cluster's CA certificate (ca.crt), for a cluster with TLS" };
    private readonly Option<string?> _tlsCert = new("--tls-cert") { Description = "your client certificate (<name>.p12 from `litevae certs issue <name> --client`)" };

    public static ClientAuthOptions AddTo(Command command)
    {
        var o = new ClientAuthOptions();
        foreach (var opt in new[] { o._runDir, o._token, o._tlsCa, o._tlsCert })
            command.Options.Add(opt);
        return o;
    }

    /// <summary>The four options (a verb that also works without a cluster refuses them there).</summary>
    public IEnumerable<Option> All => [_runDir, _token, _tlsCa, _tlsCert];

    public ClientCredentials Read(ParseResult parse) =>
        ClientCredentials.From(parse.GetValue(_tlsCa), parse.GetValue(_tlsCert), parse.GetValue(_token), parse.GetValue(_runDir));
}
