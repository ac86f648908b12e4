using System.Security.Cryptography.X509Certificates;
using System.Text;
using Akka.Actor;
using Akka.Remote.Transport.DotNetty;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Host.Security;
using LiteVae.Host.Tests.Support;
using Xunit.Abstractions;
using static LiteVae.Actors.Protocol.ClientProtocol;

namespace LiteVae.Host.Tests.Security;

/// <summary>
/// The security of a real node (NodeHost + presets + gateway + Coordinator), driven through the CLI's own
/// client: mutual TLS switched on by hocon/tls.conf, the run token on a loopback cluster without TLS,
/// path and size limits on commands, and a node that carries on after every refusal.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Collection(CliCollection.Name)]   // runs the CLI in-process, which redirects the console
public sealed class SecuredClusterTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(10);
    private readonly TestPki _pki = new();
    private readonly TempDir _tmp = new();

    private string RunDir(string name = "run") => Directory.CreateDirectory(_tmp.File(name)).FullName;

    private static string[] Coordinator(int port = 0) =>
        [$"litevae.node.port = {port}", "litevae.node.seed-nodes = []", "litevae.node.roles = [coordinator]"];

    private string[] Tls(string p12) => [$"litevae.tls.ca-certificate = \"{_pki.CaPath}\"", $"litevae.tls.certificate = \"{p12}\""];

    private static async Task<T> Ask<T>(string address, ILiteVaeMessage command, ClientCredentials credentials)
    {
        await using var client = await ClusterClient.ConnectAsync(address, TimeSpan.FromSeconds(5), credentials);
        return await client.AskAsync<T>(command, Quick);
    }

    // ------------------------------------------------------------------ TLS

    [Fact]
    public async Task With_tls_conf_only_certificate_holders_of_the_cluster_CA_can_command_the_node()
    {
        await using var node = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf"), SecuredNode.Preset("tls.conf")],
            [.. Coordinator(), .. Tls(_pki.Issue("node-a"))], RunDir());
        Assert.Equal("akka.ssl.tcp", node.Address.Protocol);
        var alice = ClientCredentials.From(_pki.CaPath, _pki.Issue("alice", CertificateKind.Client), null, null);
        var status = await Ask<ClusterStatus>(node.HostPort, new GetClusterStatus(null), alice);
        Assert.Single(status.Members);

        // A client without a certificate: the TLS node never hears its command.
        var noCert = await Assert.ThrowsAsync<ConfigException>(() => Ask<RunStopped>(node.HostPort, new RequestStop(null), ClientCredentials.None));
        Assert.Contains("--tls-cert", noCert.Message);
        output.WriteLine("client without certificate: " + noCert.Message);
        await TestNode.WaitFor(() => node.Logged("Rejected incoming connection from [[::ffff:127.0.0.1]:", "TLS handshake failure"), Quick,
            "the node to log the plain client it turned away");

        // A client with another CA's certificate (its own system accepts anything, so the refusal is the node's).
        string foreign = _pki.IssueForeign("mallory");
        var setup = new DotNettySslSetup(X509CertificateLoader.LoadPkcs12FromFile(foreign, "", X509KeyStorageFlags.EphemeralKeySet),
            suppressValidation: true, requireMutualAuthentication: true);
        await using (var mallory = TestNode.Start(setup, cluster: false, name: "litevae-cli"))
        {
            var ask = mallory.System.ActorSelection($"{node.Address}/user/gateway").Ask<object>(new RequestStop(null), TimeSpan.FromSeconds(4));
            await Assert.ThrowsAsync<AskTimeoutException>(() => ask);
        }
        await TestNode.WaitFor(() => node.Logged("TLS: refused connection from", "not signed by this cluster's CA", "CN=mallory"),
            Quick, "the node to log the refused peer");
        output.WriteLine(node.Log.First(l => l.Contains("CN=mallory")));

        // The node went on: the certificate holder still gets answers, and may stop it.
        Assert.Single((await Ask<ClusterStatus>(node.HostPort, new GetClusterStatus(null), alice)).Members);
        var stopped = await Ask<RunStopped>(node.HostPort, new RequestStop(null), alice);
        Assert.Equal(0, stopped.Step);
    }

    [Fact]
    public async Task A_node_with_a_foreign_CA_certificate_cannot_join_a_tls_node()
    {
        await using var seed = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf"), SecuredNode.Preset("tls.conf")],
            [.. Coordinator(), .. Tls(_pki.Issue("seed"))], RunDir());
        // The intruder is a complete node with its own CA (so its own startup checks pass).
        using var otherPki = new TestPki();
        await using var intruder = await StartUnjoined([SecuredNode.Preset("eval-node.conf"), SecuredNode.Preset("tls.conf")],
            ["litevae.node.port = 0", $"litevae.node.seed-nodes = [\"{seed.HostPort}\"]",
             $"litevae.tls.ca-certificate = \"{otherPki.CaPath}\"", $"litevae.tls.certificate = \"{otherPki.Issue("intruder")}\""]);
        await TestNode.WaitFor(() => seed.Logged("TLS: refused", "not signed by this cluster's CA"), TimeSpan.FromSeconds(60), "the seed to refuse the intruder");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Single(Akka.Cluster.Cluster.Get(seed.System).State.Members);
        Assert.DoesNotContain(Akka.Cluster.Cluster.Get(intruder.System).State.Members, m => m.Status == Akka.Cluster.MemberStatus.Up);
    }

    /// <summary>A node that is not expected to become Up (it is refused).</summary>
    private static async Task<SecuredNode.Unjoined> StartUnjoined(string[] hocon, string[] sets)
    {
        var file = HoconFile.Load(hocon, sets.Append("akka.loglevel = INFO").Append("akka.stdout-loglevel = OFF"));
        var host = SecuredNode.Build(file, null, false, out var started);
        await host.StartAsync();
        var (system, _) = await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return new SecuredNode.Unjoined(host, system);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Commands_to_a_tls_node_carry_no_plaintext_on_the_wire(bool tls)
    {
        const string marker = "LITEVAE-WIRE-MARKER-5d1c";
        int realPort = TestNode.FreePort();
        await using var tap = new TapProxy(realPort);
        string[] hocon = tls ? [SecuredNode.Preset("coordinator.conf"), SecuredNode.Preset("tls.conf")] : [SecuredNode.Preset("coordinator.conf")];
        string[] sets = [.. Coordinator(realPort), $"akka.remote.dot-netty.tcp.public-port = {tap.Port}", .. tls ? Tls(_pki.Issue("node")) : []];
        string run = RunDir();
        await using var node = await SecuredNode.Start(hocon, sets, run);
        var creds = tls
            ? ClientCredentials.From(_pki.CaPath, _pki.Issue("alice", CertificateKind.Client), null, null)
            : ClientCredentials.From(null, null, null, run);

        // Through the tap: the command names the marker, the refusal echoes it.
        var e = await Assert.ThrowsAsync<ConfigException>(() =>
            Ask<EvaluationAccepted>($"127.0.0.1:{tap.Port}", new RequestEvaluation($"checkpoints/{marker}", null, null), creds));
        Assert.Contains(marker, e.Message);

        byte[] wire = tap.Captured();
        Assert.True(wire.Length > 500, $"the tap saw only {wire.Length} bytes");
        bool seen = wire.AsSpan().IndexOf(Encoding.UTF8.GetBytes(marker)) >= 0 || wire.AsSpan().IndexOf(Encoding.Unicode.GetBytes(marker)) >= 0;
        if (tls) Assert.False(seen, "the marker crossed the wire in clear text under TLS");
        else Assert.True(seen, "control: without TLS the tap must see the marker, else this test could not detect plaintext");
    }

    // ------------------------------------------------------------------ loopback + run token

    [Fact]
    public async Task Without_tls_commands_need_the_run_token_and_every_refusal_names_the_peer()
    {
        string run = RunDir();
        await using var node = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf")], Coordinator(), run);
        Assert.Equal("akka.tcp", node.Address.Protocol);
        string tokenFile = RunToken.PathIn(run);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
        var owner = ClientCredentials.From(null, null, null, run);

        // No token, wrong token: refused with a clear message; the node logs who asked.
        var none = await Assert.ThrowsAsync<ConfigException>(() => Ask<RunStopped>(node.HostPort, new RequestStop(null), ClientCredentials.None));
        Assert.Contains("stop: not authorized", none.Message);
        Assert.Contains("--run-dir", none.Message);
        var wrong = await Assert.ThrowsAsync<ConfigException>(() =>
            Ask<RunStopped>(node.HostPort, new RequestStop(null), ClientCredentials.From(null, null, new string('x', 43), null)));
        Assert.Contains("run token does not match", wrong.Message);
        await TestNode.WaitFor(() => node.Logged("refused 'stop' from akka.tcp://litevae-cli@127.0.0.1:"), Quick, "a log line naming the peer");
        output.WriteLine(node.Log.First(l => l.Contains("refused 'stop'")));

        // Paths outside the run directory and the data roots, and '..', are refused; so are URLs in commands.
        string outside = Directory.CreateDirectory(_tmp.File("elsewhere")).FullName;
        Directory.CreateSymbolicLink(Path.Combine(run, "escape"), outside);
        foreach (var (checkpoint, data, expect) in new[]
                 {
                     ("../elsewhere", (string?)null, "'..'"),
                     (outside, null, "outside the run directory"),
                     ("escape", null, "symbolic link"),
                     ("last", "../elsewhere/eval-{0000..0003}.tar", "'..'"),
                     ("last", "https://example.com/eval.tar", "URLs are not accepted"),
                 })
        {
            var e = await Assert.ThrowsAsync<ConfigException>(() => Ask<EvaluationAccepted>(node.HostPort, new RequestEvaluation(checkpoint, data, null), owner));
            Assert.StartsWith("eval: ", e.Message);
            Assert.Contains(expect, e.Message);
        }
        await TestNode.WaitFor(() => node.Logged("refused 'eval' from akka.tcp://litevae-cli@", "'..'"), Quick, "the path refusal in the node log");

        // An oversized command: refused by the client before sending, and by the node when a client skips that check.
        var big = new RequestEvaluation("last", new string('a', 70_000), null);
        var tooBig = await Assert.ThrowsAsync<CommandTooLargeException>(() => Ask<EvaluationAccepted>(node.HostPort, big, owner));
        Assert.Contains("at most 65536", tooBig.Message);
        await using (var raw = TestNode.Start(null, cluster: false, name: "litevae-cli",
                         extra: "akka.actor.serializers.litevae = \"LiteVae.Actors.Serialization.LiteVaeSerializer, LiteVae.Actors\"\n" +
                                "akka.actor.serialization-bindings { \"LiteVae.Actors.Protocol.ILiteVaeMessage, LiteVae.Actors\" = litevae }\n" +
                                "akka.actor.serialization-identifiers { \"LiteVae.Actors.Serialization.LiteVaeSerializer, LiteVae.Actors\" = 7717 }\n" +
                                "akka.remote.dot-netty.tcp.maximum-frame-size = 16MiB"))
        {
            var gateway = raw.System.ActorSelection($"{node.Address}/user/gateway");
            string token = RunToken.Read(run);
            var hostile = new AuthorizedCommand(token, "c3", new byte[200_000]);
            var rejected = await gateway.Ask<CommandRejected>(hostile, Quick);
            Assert.Contains("at most 65536", rejected.Reason);
            // Not a client command inside the envelope (an internal message): refused.
            var smuggled = await gateway.Ask<CommandRejected>(new AuthorizedCommand(token, "tC", [(byte)'{', (byte)'}']), Quick);
            Assert.Contains("not a client command", smuggled.Reason);
            // Beyond the transport's frame limit (4 MiB): the node drops it without reading it into a message.
            gateway.Tell(new AuthorizedCommand(token, "c3", new byte[6 * 1024 * 1024]));
            await Task.Delay(500);
        }

        // Through all of it the node went on: the owner gets its status, and can stop it.
        var status = await Ask<ClusterStatus>(node.HostPort, new GetClusterStatus(null), owner);
        Assert.Equal(Path.GetFullPath(run), status.RunDir);
        var stopped = await Ask<RunStopped>(node.HostPort, new RequestStop(null), owner);
        Assert.Equal(0, stopped.Step);
    }

    [Fact]
    public async Task Eval_data_paths_mean_what_they_mean_where_typed_and_the_runs_own_data_folders_are_allowed()
    {
        string run = RunDir();
        string shards = Directory.CreateDirectory(_tmp.File("shards")).FullName;
        string other = Directory.CreateDirectory(_tmp.File("other")).FullName;
        File.WriteAllBytes(Path.Combine(shards, "eval-000000.tar"), new byte[1024]);
        File.WriteAllBytes(Path.Combine(other, "eval-000000.tar"), new byte[1024]);
        await using var node = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf")], Coordinator(), run, sourceFolders: [shards]);

        // Typed relative to this process's working directory (not the run directory): it passes the path check,
        // and is refused only by the next one (this test's run has no checkpoint).
        string typed = Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(shards, "eval-000000.tar"));
        var r = CliRunner.Run("eval", "--cluster", node.HostPort, "--run-dir", run, "--data", typed);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("error: eval: no checkpoint 'last'", r.Error.Trim());

        // A folder that is neither the run's data folder nor a data root: refused, saying how to allow it.
        r = CliRunner.Run("eval", "--cluster", node.HostPort, "--run-dir", run, "--data", Path.Combine(other, "eval-000000.tar"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("outside the run directory", r.Error);
        Assert.Contains($"litevae.security.data-roots=[\"{other}\"]", r.Error);
    }

    [Fact]
    public async Task Status_json_is_one_object_with_the_run_and_its_whole_run_sample_counts()
    {
        string run = RunDir();
        await using var node = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf")], Coordinator(), run);
        var r = CliRunner.Run("status", "--cluster", node.HostPort, "--run-dir", run, "--json");
        Assert.Equal(0, r.ExitCode);
        // The node runs in this process and logs to the same console: the object is the lines from "{" to "}".
        var lines = r.Out.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int first = lines.IndexOf("{"), last = lines.IndexOf("}");
        Assert.True(first >= 0 && last > first, r.Out);
        using var json = System.Text.Json.JsonDocument.Parse(string.Join('\n', lines[first..(last + 1)]));
        var root = json.RootElement;
        Assert.Equal(Path.GetFullPath(run), root.GetProperty("run_dir").GetString());
        Assert.Equal(10, root.GetProperty("max_steps").GetInt64());
        Assert.Equal(0, root.GetProperty("data").GetProperty("samples_trained").GetInt64());
        var member = Assert.Single(root.GetProperty("members").EnumerateArray().ToList());
        Assert.Equal("Up", member.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_node_without_the_token_lets_the_coordinator_node_judge_it()
    {
        string run = RunDir();
        await using var coordinator = await SecuredNode.Start([SecuredNode.Preset("coordinator.conf")], Coordinator(), run);
        await using var eval = await SecuredNode.Start([SecuredNode.Preset("eval-node.conf")],
            ["litevae.node.port = 0", $"litevae.node.seed-nodes = [\"{coordinator.HostPort}\"]"], runDir: null);
        Assert.False(File.Exists(RunToken.PathIn(_tmp.Path)));
        var status = await Ask<ClusterStatus>(eval.HostPort, new GetClusterStatus(null), ClientCredentials.From(null, null, null, run));
        Assert.Equal(2, status.Members.Count);
        var e = await Assert.ThrowsAsync<ConfigException>(() =>
            Ask<RunStopped>(eval.HostPort, new RequestStop(null), ClientCredentials.From(null, null, new string('y', 43), null)));
        Assert.Contains("run token does not match", e.Message);
        await TestNode.WaitFor(() => coordinator.Logged("refused 'stop' from akka.tcp://litevae-cli@"), Quick, "the coordinator node's log line");
    }

    [Fact]
    public void Without_tls_a_node_refuses_to_listen_beyond_loopback_unless_insecure()
    {
        var file = HoconFile.Load([SecuredNode.Preset("data-node.conf")], ["litevae.node.hostname = \"0.0.0.0\"", "litevae.node.port = 0"]);
        var e = Assert.Throws<ConfigException>(() => SecuredNode.Build(file, null, insecure: false, out _));
        Assert.Contains("refusing to listen on '0.0.0.0' without TLS", e.Message);
        Assert.Contains("--insecure", e.Message);
        using var host = SecuredNode.Build(file, null, insecure: true, out _);   // built, never started
        // With TLS on, the same address is fine.
        var tls = HoconFile.Load([SecuredNode.Preset("data-node.conf"), SecuredNode.Preset("tls.conf")],
            ["litevae.node.hostname = \"0.0.0.0\"", .. Tls(_pki.Issue("wide"))]);
        using var tlsHost = SecuredNode.Build(tls, null, insecure: false, out _);
    }

    public void Dispose()
    {
        _pki.Dispose();
        _tmp.Dispose();
    }
}
