using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Training;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Host.Tests.Support;
using Microsoft.Extensions.Hosting;

namespace LiteVae.Host.Tests.Security;

/// <summary>
/// A real node (NodeHost, the node HOCON presets, the real gateway and Coordinator) with test stand-ins
/// only where the work would be: a checkpoint store over a plain folder, and no trainer or data.
/// </summary>
public sealed class SecuredNode : IAsyncDisposable
{
    private readonly IHost _host;

    public ActorSystem System { get; }
    public ConcurrentQueue<string> Log { get; }
    public Address Address => Akka.Cluster.Cluster.Get(System).SelfAddress;
    public string HostPort => $"{Address.Host}:{Address.Port}";

    private SecuredNode(IHost host, ActorSystem system, ConcurrentQueue<string> log) => (_host, System, Log) = (host, system, log);

    public static string Preset(string name) => Path.Combine(RepoPaths.Root, "hocon", name);

    /// <param name="hocon">Node files layered in order (hocon/… presets, hocon/tls.conf).</param>
    /// <param name="runDir">Coordinator nodes: the run directory (its run-token is created there).</param>
    /// <param name="sourceFolders">Coordinator nodes: the folders of the run's own data sources (RunPlan.SourceFolders).</param>
    public static async Task<SecuredNode> Start(string[] hocon, IEnumerable<string> sets, string? runDir, bool insecure = false,
        IReadOnlyList<string>? sourceFolders = null)
    {
        var file = HoconFile.Load(hocon, sets.Append("litevae.coordinator.leave-cluster-when-stopped = off")
                                             .Append("akka.loglevel = INFO").Append("akka.stdout-loglevel = OFF"));
        var host = Build(file, runDir, insecure, out var started, sourceFolders);
        await host.StartAsync();
        var (system, log) = await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var cluster = Akka.Cluster.Cluster.Get(system);
        await TestNode.WaitFor(() => cluster.State.Members.Any(m => m.Address == cluster.SelfAddress && m.Status == Akka.Cluster.MemberStatus.Up),
            TimeSpan.FromSeconds(30), "the node to be up");
        return new SecuredNode(host, system, log);
    }

    /// <summary>Builds (does not start) the node: what `litevae node` does before it listens.</summary>
    public static IHost Build(HoconFile file, string? runDir, bool insecure, out TaskCompletionSource<(ActorSystem, ConcurrentQueue<string>)> started,
        IReadOnlyList<string>? sourceFolders = null)
    {
        var options = NodeOptions.Bind(file);
        var store = new FolderStore();
        var plan = runDir is null ? null : new Func<RunPlan>(() => new RunPlan("litevae.test = 1", runDir, "none", 10, 1, 4, 10, 5, 1, false, sourceFolders));
        var services = new NodeServices(store, () => throw new InvalidOperationException("no trainer in this test"),
            (_, _) => throw new InvalidOperationException("no data in this test"), _ => throw new InvalidOperationException("no eval in this test"), plan);
        var tcs = new TaskCompletionSource<(ActorSystem, ConcurrentQueue<string>)>(TaskCreationOptions.RunContinuationsAsynchronously);
        started = tcs;
        return NodeHost.Build(file, options, services, system =>
        {
            var log = new ConcurrentQueue<string>();
            try
            {
                var sink = system.ActorOf(Props.Create(() => new LogSink(log)));
                system.EventStream.Subscribe(sink, typeof(LogEvent));
            }
            catch (InvalidOperationException) when (system.WhenTerminated.IsCompleted || CoordinatedShutdown.Get(system).ShutdownReason is not null)
            {
                // A refused node can be shutting down before its startup finished (on a loaded machine): it has
                // no log to keep, and what the tests check about it (never Up) still holds.
            }
            tcs.TrySetResult((system, log));
        }, insecure);
    }

    public bool Logged(params string[] fragments) => Log.Any(l => fragments.All(f => l.Contains(f, StringComparison.Ordinal)));

    public async ValueTask DisposeAsync()
    {
        try { await _host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30)); }
        catch (TimeoutException) { }
        _host.Dispose();
    }

    /// <summary>Checkpoints are step directories under the run's checkpoints/ (none here unless a test makes one).</summary>
    private sealed class FolderStore : ICheckpointStore
    {
        public string Write(ICheckpointSnapshot snapshot, string runDir, string reason) => throw new InvalidOperationException("no checkpoints in this test");
        public IReadOnlyList<CheckpointEntry> List(string runDir) => [];
        public string Resolve(string runDir, string spec) =>
            Directory.Exists(spec) ? spec : throw new CheckpointNotFoundException($"no checkpoint '{spec}'");
    }

    /// <summary>A started node that is not expected to join anything.</summary>
    public sealed class Unjoined(IHost host, ActorSystem system) : IAsyncDisposable
    {
        public ActorSystem System => system;

        public async ValueTask DisposeAsync()
        {
            try { await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30)); }
            catch (TimeoutException) { }
            host.Dispose();
        }
    }
}
