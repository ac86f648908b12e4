using LiteVae.Actors;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Transfer;
using LiteVae.Host.Config;
using LiteVae.Host.Node.Management;
using LiteVae.Model.Distributed;

namespace LiteVae.Host.Node;

/// <summary>A node's settings (HOCON <c>litevae.*</c> of the node file), validated once at startup.</summary>
/// <param name="DecodeWorkers">This data node's decode threads; 0 takes the experiment's <c>data.decode-workers</c>.</param>
public sealed record NodeOptions(
    IReadOnlyList<string> Roles, string Hostname, int Port, string PublicHostname, IReadOnlyList<(string Host, int Port)> Seeds,
    string RunsRoot, string RunDir, CoordinatorSettings Coordinator, int MaxLeases, int DecodeWorkers, int ChunkBytes,
    TimeSpan DataHeartbeat, int IntakeBatches, TimeSpan RegisterInterval, TimeSpan ProgressInterval, TimeSpan MinBackoff,
    TimeSpan MaxBackoff, TimeSpan FinalCheckpointTimeout, TimeSpan EvalHeartbeat, CollectiveSettings Collectives)
{
    /// <summary>Whether this node shares the run directory of the coordinator's node, and how checkpoints are copied when not.</summary>
    public StorageSettings Storage { get; init; } = StorageSettings.SharedDisk;

    public const string GpuDispatcher = "litevae.gpu-dispatcher";

    /// <summary>How often freed native memory goes back to the OS (<see cref="NativeMemoryTrim"/>); zero = never.</summary>
    public TimeSpan MallocTrimInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary><c>litevae.management.*</c>: the Akka.Management HTTP endpoint (off by default).</summary>
    public ManagementSettings Management { get; init; } = ManagementSettings.Off;
    /// <summary><c>litevae.node.discovery.*</c>: static seeds (default) or Cluster Bootstrap.</summary>
    public DiscoverySettings Discovery { get; init; } = DiscoverySettings.Static;

    public bool Has(string role) => Roles.Contains(role);

    /// <summary>A short name for logs and status: host:port.</summary>
    public string NodeName(int boundPort) => $"{(PublicHostname == "" ? Hostname : PublicHostname)}:{boundPort}";

    public static NodeOptions Bind(HoconFile f)
    {
        var roles = f.StringList("litevae.node.roles");
        if (roles.Count == 0)
            throw new ConfigException($"{f.Source}: key 'litevae.node.roles' is empty; list some of: {string.Join(", ", ClusterRoles.All)}.");
        foreach (var r in roles)
            if (!ClusterRoles.All.Contains(r))
                throw new ConfigException($"{f.Source}: key 'litevae.node.roles' has unknown role '{r}'; roles are: {string.Join(", ", ClusterRoles.All)}.");
        var seeds = f.StringList("litevae.node.seed-nodes", []).Select(s => ParseAddress(s, $"{f.Source}: key 'litevae.node.seed-nodes'")).ToList();
        if (f.Has("litevae.data")) f.Section("litevae.data").RejectUnknown(DataKeys, "litevae.data.");
        var (group, collectives) = DistributedSettingsBinder.Bind(f);
        string hostname = f.String("litevae.node.hostname", "127.0.0.1"), publicHostname = f.String("litevae.node.public-hostname", "");
        var (management, discovery) = ManagementBinder.Bind(f, seeds, hostname, publicHostname);
        if (f.Has("litevae.storage")) f.Section("litevae.storage").RejectUnknown(StorageKeys, "litevae.storage.");
        string shared = f.String("litevae.storage.shared-run-dir", "auto");
        var mode = shared switch
        {
            "auto" => SharedRunDir.Auto,
            "yes" or "on" or "true" => SharedRunDir.Yes,
            "no" or "off" or "false" => SharedRunDir.No,
            _ => throw new ConfigException($"{f.Source}: key 'litevae.storage.shared-run-dir' is '{shared}'; use auto, yes or no."),
        };
        string runsRoot = f.String("litevae.run.runs-root", "runs"), runDir = f.String("litevae.run.run-dir", "");
        // A chunk travels in one remoting frame (akka.remote.dot-netty.tcp.maximum-frame-size, 4 MiB in base.conf).
        var storage = new StorageSettings(mode, runsRoot, runDir, f.Int("litevae.storage.chunk-kb", 1024, 16, 3072) * 1024,
            TimeSpan.FromSeconds(f.Double("litevae.storage.request-timeout-s", 30, 1, 600)), f.Int("litevae.storage.attempts", 3, 1, 100));
        return new NodeOptions(
            roles.Distinct().ToList(),
            hostname,
            f.Int("litevae.node.port", 0, 0, 65535),
            publicHostname,
            seeds,
            runsRoot,
            runDir,
            new CoordinatorSettings(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(f.Int("litevae.coordinator.overdue-batch-s", 60, 2)),
                f.Bool("litevae.coordinator.leave-cluster-when-stopped", true),
                f.StringList("litevae.security.data-roots", []).Where(r => r != "").ToList()) { Group = group },
            f.Int("litevae.data.max-leases", 2, 1, 64),
            f.Int("litevae.data.decode-workers", 0, 0, 1024),
            f.Int("litevae.data.chunk-kb", 256, 4, 3072) * 1024,
            TimeSpan.FromSeconds(f.Double("litevae.data.heartbeat-s", 1, 0.1, 60)),
            f.Int("litevae.trainer.intake-batches", 4, 1, 256),
            TimeSpan.FromSeconds(f.Double("litevae.trainer.register-interval-s", 2, 0.1, 60)),
            TimeSpan.FromSeconds(f.Double("litevae.trainer.progress-interval-s", 5, 0.1, 600)),
            TimeSpan.FromSeconds(f.Double("litevae.trainer.min-backoff-s", 1, 0.1, 600)),
            TimeSpan.FromSeconds(f.Double("litevae.trainer.max-backoff-s", 30, 0.1, 3600)),
            TimeSpan.FromSeconds(f.Double("litevae.trainer.final-checkpoint-timeout-s", 120, 1, 3600)),
            TimeSpan.FromSeconds(f.Double("litevae.eval.heartbeat-s", 2, 0.1, 60)),
            collectives)
        {
            MallocTrimInterval = TimeSpan.FromSeconds(f.Double("litevae.node.malloc-trim-s", 60, 0, 86400)),
            Management = management,
            Discovery = discovery,
            Storage = storage,
        };
    }

    private static readonly string[] StorageKeys = ["shared-run-dir", "chunk-kb", "request-timeout-s", "attempts"];

    private static readonly string[] DataKeys = ["max-leases", "decode-workers", "chunk-kb", "heartbeat-s"];

    /// <summary>Parses host:port strictly (what --cluster and seed-nodes take).</summary>
    public static (string Host, int Port) ParseAddress(string text, string what)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1 || !int.TryParse(text[(colon + 1)..], out int port) || port is < 1 or > 65535
            || text[..colon].Any(char.IsWhiteSpace) || text.Contains('/'))
            throw new ConfigException($"{what}: malformed address '{text}'; expected host:port, e.g. 127.0.0.1:4053.");
        return (text[..colon], port);
    }
}
