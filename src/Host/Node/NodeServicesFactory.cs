using System.Globalization;
using LiteVae.Actors.Coordination;
using LiteVae.Host.Config;

namespace LiteVae.Host.Node;

/// <summary>Node settings that are not HOCON: the LPIPS weights folder, and a test hook that slows
/// checkpoint files down so a test can kill a process mid-write.</summary>
public sealed record NodeExtras(string? WeightsFolder, int DebugCheckpointFileDelayMs);

/// <summary>
/// The composition root of a node: the run plan from the experiment config and the adapters from the
/// actors' interfaces to the trainer, data pipeline, metrics and checkpoint store of src/Model and src/Data.
/// </summary>
public static class NodeServicesFactory
{
    public static NodeServices Create(NodeOptions node, string? experimentPath, string? resume, IReadOnlyList<string> experimentSets,
        NodeExtras extras)
    {
        Func<RunPlan>? plan = experimentPath is null && resume is null ? null : () => Plan(node, experimentPath, resume, experimentSets);
        if (resume is not null && !File.Exists(Path.Combine(resume, "config.conf")))
            throw new ConfigException($"{resume}: not a run directory (no config.conf); pass --config <experiment.conf> to start a run.");
        var services = Adapters.Create(node, plan, extras);
        if (resume is not null && services.Store.List(resume).Count == 0)
            throw new ConfigException($"{resume}: the run has no complete checkpoint yet, so there is nothing to resume; " +
                                      "start it again with --config (and --run-dir).");
        return services;
    }

    /// <summary>
    /// The run plan: a resumed run takes the config saved in its directory (never the flags), a new run
    /// gets runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;name&gt;_&lt;precision&gt;/ with the resolved config written into it.
    /// </summary>
    public static RunPlan Plan(NodeOptions node, string? experimentPath, string? resume, IReadOnlyList<string> experimentSets)
    {
        string? runDir = resume ?? (node.RunDir == "" ? null : node.RunDir);
        // The experiment text travels to every node and into config.conf resolved: includes inlined (they
        // name files next to the experiment file, which other nodes and a resumed run may not have) and the
        // --set lines applied.
        string text;
        string source;
        if (runDir is not null && File.Exists(Path.Combine(runDir, "config.conf")))
            source = Path.Combine(runDir, "config.conf");
        else if (experimentPath is not null)
            source = experimentPath;
        else
            throw new ConfigException($"{runDir}: not a run directory (no config.conf); pass --config <experiment.conf> to start a run.");
        if (!File.Exists(source)) throw new ConfigException($"{source}: config file not found.");
        text = File.ReadAllText(source) + (experimentSets.Count == 0 ? "" : "\n# --set\n" + string.Join("\n", experimentSets) + "\n");
        var config = HoconFile.Parse(text, source, includeRoot: Path.GetDirectoryName(Path.GetFullPath(source)));
        text = config.Render();
        string name = config.String("experiment.name", Path.GetFileNameWithoutExtension(experimentPath ?? "run"));
        string precision = config.String("trainer.precision", "fp32");
        runDir ??= Path.Combine(node.RunsRoot, $"{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}_{name}_{precision}");
        Directory.CreateDirectory(runDir);
        string saved = Path.Combine(runDir, "config.conf");
        if (!File.Exists(saved)) File.WriteAllText(saved, text);
        var c = Adapters.Bind(text, saved);
        var shards = Adapters.TrainShards(c);
        // A node that also reads the data sees the same files as its data role: if none of the shards is
        // there, every read would fail and the run would cycle through empty epochs. (A coordinator without
        // the data role cannot tell: its data nodes may mount the data elsewhere.)
        static bool MissingTar(string s) => s.EndsWith(".tar", StringComparison.OrdinalIgnoreCase) && !s.Contains("://") && !File.Exists(s);
        if (node.Has(Actors.ClusterRoles.Data) && shards.Count > 0 && shards.All(MissingTar))
            throw new ConfigException($"{source}: data.source matches no readable file on this node (e.g. {shards.FirstOrDefault() ?? "none"}); " +
                                      "point it at your tar shards with --set data.source=\"path/train-{000000..000099}.tar\".");
        return new RunPlan(text, Path.GetFullPath(runDir), shards, c.Data.Seed, c.Run.MaxSteps,
            checked((int)c.Checkpoint.EverySteps), c.Run.LogEvery, EvalEachCheckpoint: c.EvalData is not null && c.Eval.Images > 0);
    }
}
