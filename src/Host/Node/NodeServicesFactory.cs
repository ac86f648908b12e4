using LiteVae.Actors.Coordination;
using LiteVae.Actors.Training;
using LiteVae.Data.Config;
using LiteVae.Data.Shards;
using LiteVae.Host.Config;
using LiteVae.Host.Evaluation;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Node;

/// <summary>Node settings that are not HOCON: the LPIPS weights folder, and test hooks that slow checkpoint files and
/// evaluation batches down so a test can kill a process mid-write or while an evaluation waits.</summary>
public sealed record NodeExtras(string? WeightsFolder, int DebugCheckpointFileDelayMs, int DebugEvalBatchDelayMs = 0);

/// <summary>
/// The composition root of a node: the run plan from the experiment config, and the real trainer engine,
/// checkpoint store and evaluation jobs behind the roles.
/// </summary>
public static class NodeServicesFactory
{
    public static NodeServices Create(NodeOptions node, string? experimentPath, string? resume, IReadOnlyList<string> experimentSets,
        NodeExtras extras)
    {
        Func<RunPlan>? plan = experimentPath is null && resume is null ? null : () => Plan(node, experimentPath, resume, experimentSets);
        if (resume is not null && !File.Exists(RunDirectory.ConfigOf(resume)))
            throw new ConfigException($"{resume}: not a run directory (no config.conf); pass --config <experiment.conf> to start a run.");
        var weights = WeightsFolder.Resolve(extras.WeightsFolder);
        var store = new RunCheckpoints(extras.DebugCheckpointFileDelayMs);
        if (resume is not null && store.List(resume).Count == 0)
            throw new ConfigException($"{resume}: the run has no complete checkpoint yet, so there is nothing to resume; " +
                                      "start it again with --config (and --run-dir).");
        return new NodeServices(store, () => new LiteVaeEngine(ExperimentConfigBinder.Bind, weights, node.Collectives), ExperimentConfigBinder.Bind,
            request => new CheckpointEvaluation(request, weights, extras.DebugEvalBatchDelayMs), plan);
    }

    /// <summary>HOCON lines that make the relative local entries of data.source and eval-data.source absolute ("" if none are).</summary>
    private static string AbsoluteSources(LiteVae.Actors.ExperimentConfig c)
    {
        static bool Relative(string s) => !TarShard.IsHttp(s) && !Path.IsPathRooted(s);
        static string List(IEnumerable<string> items) =>
            "[" + string.Join(", ", items.Select(i => System.Text.Json.JsonSerializer.Serialize(Relative(i) ? Path.GetFullPath(i) : i))) + "]";
        var lines = new List<string>();
        if (c.Data.Source.Any(Relative)) lines.Add($"data.source = {List(c.Data.Source)}");
        if (c.EvalData?.Source.Any(Relative) == true) lines.Add($"eval-data.source = {List(c.EvalData.Source)}");
        return string.Join('\n', lines);
    }

    /// <summary>A new run's directory name, &lt;time&gt;_&lt;experiment.name&gt;_&lt;precision&gt; (also what `launch` decides up front).</summary>
    public static string NewRunName(HoconFile experiment, string? experimentPath) =>
        RunDirectory.NewName(experiment.String("experiment.name", Path.GetFileNameWithoutExtension(experimentPath ?? "run")),
            experiment.String("trainer.precision", "fp32"), DateTime.Now);

    /// <summary>The folders the run's own (absolute, local) data and eval-data sources live in: an `eval --cluster
    /// --data` may name shards there without a data-roots entry, since the run reads them anyway.</summary>
    private static List<string> SourceFolders(LiteVae.Actors.ExperimentConfig c) =>
        c.Data.Source.Concat(c.EvalData?.Source ?? [])
            .Where(s => !TarShard.IsHttp(s) && Path.IsPathRooted(s))
            .Select(s => Directory.Exists(s) ? s : Path.GetDirectoryName(s))
            .OfType<string>().Distinct().ToList();

    /// <summary>
    /// The run plan: a resumed run takes the config saved in its directory (never the flags), a new run
    /// gets runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;name&gt;_&lt;precision&gt;/ with the resolved config written into it. The training
    /// shards are indexed here (their headers scanned once, the index kept in the run directory), which fixes
    /// the run's sample order; every data node must compute the same one from its own copy of the shards.
    /// </summary>
    public static RunPlan Plan(NodeOptions node, string? experimentPath, string? resume, IReadOnlyList<string> experimentSets)
    {
        string? runDir = resume ?? (node.RunDir == "" ? null : node.RunDir);
        // The experiment text travels to every node and into config.conf resolved: includes inlined (they
        // name files next to the experiment file, which other nodes and a resumed run may not have) and the
        // --set lines applied.
        string source;
        if (runDir is not null && File.Exists(RunDirectory.ConfigOf(runDir)))
            source = RunDirectory.ConfigOf(runDir);
        else if (experimentPath is not null)
            source = experimentPath;
        else
            throw new ConfigException($"{runDir}: not a run directory (no config.conf); pass --config <experiment.conf> to start a run.");
        if (!File.Exists(source)) throw new ConfigException($"{source}: config file not found.");
        string text = File.ReadAllText(source) + (experimentSets.Count == 0 ? "" : "\n# --set\n" + string.Join("\n", experimentSets) + "\n");
        var config = HoconFile.Parse(text, source, includeRoot: Path.GetDirectoryName(Path.GetFullPath(source)));
        text = config.Render();
        var c = ExperimentConfigBinder.Bind(text, source);   // before anything is written: a bad config leaves no run directory
        // A relative data path means what it meant where the run was started: every node, a resumed run and
        // `litevae audit` read the config from elsewhere, so it is saved absolute.
        if (AbsoluteSources(c) is { Length: > 0 } absolute)
        {
            text = HoconFile.Parse(text + "\n" + absolute, source).Render();
            c = ExperimentConfigBinder.Bind(text, source);
        }
        runDir ??= Path.Combine(node.RunsRoot, NewRunName(config, experimentPath));
        Directory.CreateDirectory(runDir);
        string saved = RunDirectory.ConfigOf(runDir);
        if (!File.Exists(saved)) File.WriteAllText(saved, text);
        var shards = c.Data.ResolveShards();
        if (shards.Count > 16) Console.WriteLine($"indexing {shards.Count} training shards (their headers only; kept in {RunDirectory.DataIndexOf(runDir)})");
        var index = c.Data.LoadIndex(p => Console.WriteLine($"data: {p}"), RunDirectory.DataIndexOf(runDir));
        if (index.TotalSamples == 0)
            throw new ConfigException($"{source}: data.source has no readable sample ({shards.Count} shard(s), e.g. {shards[0].Name}" +
                                      (index.Problems.Count > 0 ? $": {index.Problems[0].Detail}" : "") + "); point it at your tar shards with " +
                                      "--set 'data.source=\"path/train-{000000..000099}.tar\"'.");
        var order = c.Data.CreateOrder(index, DataUse.Train);
        return new RunPlan(text, Path.GetFullPath(runDir), order.Fingerprint, order.SamplesPerEpoch, shards.Count, c.Data.BatchSize, c.Run.MaxSteps,
            checked((int)c.Checkpoint.EverySteps), c.Run.LogEvery, EvalEachCheckpoint: c.EvalData is not null && c.Eval.Images > 0, SourceFolders(c),
            RunDirectory.EnsureId(runDir), new RetentionPolicy(c.Checkpoint.KeepLast, c.Checkpoint.KeepBest));
    }
}
