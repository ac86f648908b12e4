using System.CommandLine;
using Akka.Cluster;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Host.Telemetry;
using Microsoft.Extensions.Hosting;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae node --hocon hocon/&lt;role&gt;.conf [--config experiment.conf] [--set k=v]…</c>: one cluster node.</summary>
internal static class NodeCommand
{
    public static Option<string[]> SetOption() => new("--set")
    {
        Description = "override a HOCON key, e.g. --set litevae.node.port=4060 (repeatable)",
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };

    public static Command Create()
    {
        var hocon = new Option<string[]>("--hocon")
        {
            Description = "node settings: hocon/coordinator.conf, data-node.conf, trainer-node.conf, eval-node.conf …; repeat to layer " +
                          "files (later wins), e.g. --hocon hocon/data-node.conf --hocon hocon/tls.conf",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var insecure = new Option<bool>("--insecure")
        {
            Description = "listen on a non-loopback address WITHOUT TLS (anyone who reaches the port can join or stop the cluster); " +
                          "use only on a private network, prefer hocon/tls.conf",
        };
        var config = new Option<string?>("--config") { Description = "experiment config (needed on coordinator nodes)" };
        var set = SetOption();
        var otlp = TelemetryOptions.Otlp();
        // Test hook: slows checkpoint writing down so a test can kill the node mid-write.
        var writeDelay = new Option<int>("--debug-checkpoint-file-delay-ms") { Hidden = true, DefaultValueFactory = _ => 0 };
        var evalDelay = new Option<int>("--debug-eval-batch-delay-ms") { Hidden = true, DefaultValueFactory = _ => 0 };
        var command = new Command("node", "Start one node of a LiteVae cluster with the roles its HOCON names; runs until stopped");
        command.Options.Add(hocon);
        command.Options.Add(config);
        command.Options.Add(set);
        command.Options.Add(otlp);
        command.Options.Add(insecure);
        command.Options.Add(writeDelay);
        command.Options.Add(evalDelay);
        Cli.SetAction(command, parse =>
        {
            var (nodeSets, experimentSets) = SplitOverrides(parse.GetValue(set) ?? []);
            var file = HoconFile.Load(parse.GetValue(hocon)!, nodeSets);
            return Run(file, parse.GetValue(config), resume: null, experimentSets, new NodeExtras(null, parse.GetValue(writeDelay), parse.GetValue(evalDelay)), otlp: parse.GetValue(otlp),
                insecure: parse.GetValue(insecure));
        });
        return command;
    }

    /// <summary>--set keys under litevae.* and akka.* configure the node; the rest the experiment.</summary>
    public static (string[] Node, string[] Experiment) SplitOverrides(IEnumerable<string> sets)
    {
        var all = sets.Select(QuoteBracePattern).ToList();
        bool IsNode(string s) => s.StartsWith("litevae.", StringComparison.Ordinal) || s.StartsWith("akka.", StringComparison.Ordinal);
        return (all.Where(IsNode).ToArray(), all.Where(s => !IsNode(s)).ToArray());
    }

    /// <summary>
    /// <c>--set data.source="/data/train-{000000..001281}.tar"</c> as typed in bash reaches us without its quotes
    /// (the shell eats them, and they are what stops its brace expansion), and HOCON would read the braces as an
    /// object. A bare value with a brace inside is a shard pattern, so it is quoted here; values that start with
    /// <c>{</c>, <c>[</c> or <c>"</c> are HOCON as written.
    /// </summary>
    public static string QuoteBracePattern(string set)
    {
        int eq = set.IndexOf('=');
        if (eq <= 0) return set;
        string value = set[(eq + 1)..].Trim();
        if (value.Length == 0 || value[0] is '{' or '[' or '"' || !value.Contains('{')) return set;
        return set[..eq] + "=" + System.Text.Json.JsonSerializer.Serialize(value);
    }

    /// <summary>Runs a node until its ActorSystem terminates (stop command, Ctrl+C, downed); returns its <see cref="NodeExit"/> code.</summary>
    public static int Run(HoconFile file, string? experiment, string? resume, IReadOnlyList<string> experimentSets,
        NodeExtras extras, Action<Akka.Actor.ActorSystem>? started = null, string? otlp = null, string? telemetryRole = null,
        bool insecure = false)
    {
        var options = NodeOptions.Bind(file);
        // OTLP export for this process (only when --otlp or OTEL_EXPORTER_OTLP_ENDPOINT is set); service
        // litevae-<roles>, e.g. litevae-coordinator-trainer; flushed when the node stops.
        using var telemetry = OtelSession.Start(telemetryRole ?? string.Join("-", options.Roles), otlp);
        var services = NodeServicesFactory.Create(options, experiment, resume, experimentSets, extras);
        Akka.Actor.ActorSystem? actorSystem = null;
        var runFailed = new RunFailureWatch();
        using var host = NodeHost.Build(file, options, services, system =>
        {
            actorSystem = system;
            runFailed.Watch(system);
            var self = Cluster.Get(system).SelfAddress;
            string auth = self.Protocol == "akka.ssl.tcp" ? " --tls-ca <ca.crt> --tls-cert <client.p12>" : " --run-dir <run directory>";
            Console.WriteLine($"litevae node [{string.Join(", ", options.Roles)}] at {self.Host}:{self.Port}  (commands: litevae status --cluster {self.Host}:{self.Port}{auth})");
            started?.Invoke(system);
        }, insecure);
        host.Run();
        var reason = actorSystem is null ? null : Akka.Actor.CoordinatedShutdown.Get(actorSystem).ShutdownReason;
        int code = NodeExit.Code(reason, runFailed.Failed);
        if (code == NodeExit.Downed) Console.Error.WriteLine("this node was removed from the cluster (downed); restart it to join again");
        if (code == NodeExit.JoinFailed) Console.Error.WriteLine("this node could not join its seed nodes; check litevae.node.seed-nodes");
        return code;
    }

    /// <summary>Notes a <see cref="RunFinished"/> with an error published on this node (the Coordinator runs here).</summary>
    private sealed class RunFailureWatch
    {
        private volatile bool _failed;
        public bool Failed => _failed;

        public void Watch(Akka.Actor.ActorSystem system)
        {
            var watcher = system.ActorOf(Akka.Actor.Props.Create(() => new Watcher(this)), "run-failure-watch");
            system.EventStream.Subscribe(watcher, typeof(LiteVae.Actors.Coordination.RunFinished));
        }

        private sealed class Watcher : Akka.Actor.ReceiveActor
        {
            public Watcher(RunFailureWatch owner) =>
                Receive<LiteVae.Actors.Coordination.RunFinished>(f => { if (f.Failed) owner._failed = true; });
        }
    }
}
