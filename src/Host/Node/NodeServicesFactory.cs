using System.Globalization;
using LiteVae.Actors.Coordination;
using LiteVae.Host.Config;

namespace LiteVae.Host.Node;

/// <summary>
/// The composition root of a node: the run plan from the experiment config and the adapters from the
/// actors' interfaces to the trainer, data pipeline, metrics and checkpoint store of src/Model and src/Data.
/// </summary>
public static class NodeServicesFactory
{
    public static NodeServices Create(NodeOptions node, string? experimentPath, string? resume)
    {
        Func<RunPlan>? plan = experimentPath is null && resume is null ? null : () => Plan(node, experimentPath, resume);
        return Adapters.Create(node, plan);
    }

    /// <summary>
    /// The run plan: a resumed run takes the config saved in its directory (never the flags), a new run
    /// gets runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;name&gt;_&lt;precision&gt;/ with the resolved config written into it.
    /// </summary>
    public static RunPlan Plan(NodeOptions node, string? experimentPath, string? resume)
    {
        string? runDir = resume ?? (node.RunDir == "" ? null : node.RunDir);
        HoconFile config;
        if (runDir is not null && File.Exists(Path.Combine(runDir, "config.conf")))
            config = HoconFile.Load(Path.Combine(runDir, "config.conf"));
        else if (experimentPath is not null)
            config = HoconFile.Load(experimentPath);
        else
            throw new ConfigException($"{runDir}: not a run directory (no config.conf); pass --config <experiment.conf> to start a run.");
        string name = config.String("experiment.name", Path.GetFileNameWithoutExtension(experimentPath ?? "run"));
        string precision = config.String("trainer.precision", "fp32");
        if (runDir is null)
        {
            runDir = Path.Combine(node.RunsRoot, $"{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}_{name}_{precision}");
        }
        Directory.CreateDirectory(runDir);
        string text = config.Render();
        string saved = Path.Combine(runDir, "config.conf");
        if (!File.Exists(saved)) File.WriteAllText(saved, text);
        var shards = Adapters.ExpandShards(config.String("data.source"), config.Source + "#data.source");
        return new RunPlan(text, Path.GetFullPath(runDir), shards, config.Long("data.seed", 0), config.Long("trainer.max-steps", min: 1),
            config.Int("checkpoint.every-steps", 1000, 1), config.Int("trainer.log-every", 50, 1), config.Bool("eval.each-checkpoint", false));
    }
}
