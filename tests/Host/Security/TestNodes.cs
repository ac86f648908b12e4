using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace LiteVae.Host.Tests.Security;

/// <summary>Collects a system's log events so tests can assert on what a node logged about a peer.</summary>
public sealed class LogSink : ReceiveActor
{
    public LogSink(ConcurrentQueue<string> lines) => Receive<LogEvent>(e => lines.Enqueue($"[{e.LogLevel()}] {e.Message}"));
}

/// <summary>Records every message it gets (as a stand-in for a node actor that should never hear from an outsider).</summary>
public sealed class Recorder : ReceiveActor
{
    public Recorder(ConcurrentQueue<object> got) => ReceiveAny(m => { got.Enqueue(m); Sender.Tell($"ack:{m}"); });
}

/// <summary>A small Akka system on loopback: a cluster node or a remote-only client, with or without TLS.</summary>
public sealed class TestNode : IAsyncDisposable
{
    public const string SystemName = "litevae";

    public ActorSystem System { get; }
    public ConcurrentQueue<string> Log { get; } = new();
    public ConcurrentQueue<object> Received { get; } = new();
    public Address Address => ((ExtendedActorSystem)System).Provider.DefaultAddress;

    private TestNode(ActorSystem system)
    {
        System = system;
        var sink = system.ActorOf(Props.Create(() => new LogSink(Log)), "log-sink");
        system.EventStream.Subscribe(sink, typeof(LogEvent));
        system.ActorOf(Props.Create(() => new Recorder(Received)), "recorder");
    }

    /// <param name="ssl">null: plain TCP.</param>
    /// <param name="cluster">false: a remote-only system, like the CLI client.</param>
    public static TestNode Start(DotNettySslSetup? ssl, bool cluster = true, int port = 0, int publicPort = 0, string? seed = null,
        string name = SystemName, string extra = "")
    {
        var config = ConfigurationFactory.ParseString($$"""
            akka {
              loglevel = INFO
              loggers = ["Akka.Event.TraceLogger, Akka"]
              stdout-loglevel = OFF
              log-dead-letters = off
              actor.provider = {{(cluster ? "cluster" : "remote")}}
              remote.dot-netty.tcp {
                hostname = "127.0.0.1"
                port = {{port}}
                {{(publicPort > 0 ? $"public-port = {publicPort}" : "")}}
                enable-ssl = {{(ssl is null ? "off" : "on")}}
              }
              remote.retry-gate-closed-for = 500ms
              cluster {
                seed-nodes = [{{(seed is null ? "" : $"\"{seed}\"")}}]
                min-nr-of-members = 1
                seed-node-timeout = 1s
                retry-unsuccessful-join-after = 1s
                shutdown-after-unsuccessful-join-seed-nodes = off
              }
              coordinated-shutdown.run-by-clr-shutdown-hook = off
              coordinated-shutdown.exit-clr = off
            }
            """);
        if (extra != "") config = ConfigurationFactory.ParseString(extra).WithFallback(config);
        var bootstrap = BootstrapSetup.Create().WithConfig(config);
        var setup = ssl is null ? ActorSystemSetup.Create(bootstrap) : ActorSystemSetup.Create(bootstrap, ssl);
        return new TestNode(ActorSystem.Create(name, setup));
    }

    /// <summary>A seed that forms a cluster of one.</summary>
    public static async Task<TestNode> StartSeed(DotNettySslSetup? ssl, int port = 0, int publicPort = 0, string extra = "")
    {
        var node = Start(ssl, port: port, publicPort: publicPort, extra: extra);
        var cluster = Akka.Cluster.Cluster.Get(node.System);
        cluster.Join(cluster.SelfAddress);
        await WaitFor(() => cluster.State.Members.Any(m => m.Status == MemberStatus.Up), TimeSpan.FromSeconds(10), "seed up");
        return node;
    }

    public int UpMembers => Akka.Cluster.Cluster.Get(System).State.Members.Count(m => m.Status == MemberStatus.Up);

    public bool Logged(string fragment) => Log.Any(l => l.Contains(fragment, StringComparison.Ordinal));

    public static async Task WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for: {what}");
            await Task.Delay(50);
        }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public async ValueTask DisposeAsync() => await System.Terminate().WaitAsync(TimeSpan.FromSeconds(20));
}
