using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Node;

/// <summary>The run plan resolves an experiment once, so every node and a resumed run read the same document.</summary>
public sealed class RunPlanTests : IDisposable
{
    private readonly string _runDir = Path.Combine(Path.GetTempPath(), $"litevae-plan-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_runDir)) Directory.Delete(_runDir, recursive: true);
    }

    private static NodeOptions Node(string runDir) => NodeOptions.Bind(HoconFile.Load(
        Path.Combine(AppContext.BaseDirectory, "hocon", "single-node.conf"), [$"litevae.run.run-dir=\"{runDir}\""]));

    [Fact]
    public void Includes_next_to_the_experiment_file_are_inlined_into_the_plan_and_config_conf()
    {
        // phase-a.conf includes model/litevae-b-f8c12.conf relative to configs/, not to the working directory.
        string experiment = Path.Combine(RepoPaths.Root, "configs", "phase-a.conf");
        string shards = Path.Combine(RepoPaths.Root, "samples", "shards", "train-{000000..000003}.tar");
        var plan = NodeServicesFactory.Plan(Node(_runDir), experiment, null, ["data.seed = 7", $"data.source = \"{shards}\""]);

        string saved = File.ReadAllText(Path.Combine(_runDir, "config.conf"));
        Assert.DoesNotContain("include", saved);
        Assert.Equal(plan.ExperimentHocon, saved);
        var c = ExperimentConfigBinder.Bind(saved, "config.conf");   // parses with no include root at all
        Assert.Equal(12, c.Model.EmbedDim);
        Assert.Equal(7, c.Data.Seed);

        // Resuming reads config.conf alone and gets the same document back.
        var resumed = NodeServicesFactory.Plan(Node(_runDir), null, _runDir, []);
        Assert.Equal(plan.ExperimentHocon, resumed.ExperimentHocon);
    }

    [Fact]
    public void A_source_with_no_shard_on_disk_is_refused_before_the_run_starts()
    {
        string experiment = Path.Combine(RepoPaths.Root, "configs", "quickstart.conf");
        var e = Assert.Throws<ConfigException>(() =>
            NodeServicesFactory.Plan(Node(_runDir), experiment, null, ["data.source = \"/nonexistent/train-{000000..000001}.tar\""]));
        Assert.Contains("data.source has no readable sample", e.Message);
        Assert.Contains("/nonexistent/train-000000.tar", e.Message);
        Assert.Contains("file not found", e.Message);
    }
}
