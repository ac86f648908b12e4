using System.CommandLine;
using System.Globalization;
using LiteVae.Host.Config;
using LiteVae.Host.Node;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae launch</c>: one trainer process per GPU of this host (or N CPU processes), as one data-parallel group.</summary>
internal static class LaunchCommand
{
    public static Command Create()
    {
        var command = new Command("launch",
            "Start one trainer process per GPU of this host as one data-parallel run (or join a cluster with them).\n" +
            "  new run:      litevae launch --config configs/phase-a.conf [--gpus 0,1] [--run-dir runs/x]\n" +
            "                (the first process also coordinates, reads the data and evaluates; the others join it)\n" +
            "  resume:       litevae launch --run-dir runs/<run>\n" +
            "  join:         litevae launch --seed host:port --run-dir <the cluster's run dir> --set litevae.distributed.trainers=<total>\n" +
            "  CPU (tests):  litevae launch --cpu 2 --config configs/quickstart.conf\n" +
            "Ctrl+C / SIGTERM stops the run cleanly (final checkpoint, then every node leaves); a second one terminates the processes.");
        var config = new Option<string?>("--config") { Description = "Experiment config (HOCON) of a new run." };
        var gpus = new Option<string?>("--gpus") { Description = "GPU ids, one process each (default: every GPU this process sees)." };
        var cpu = new Option<int?>("--cpu") { Description = "Start this many CPU trainer processes instead of GPU ones." };
        var seed = new Option<string?>("--seed") { Description = "host:port of a running cluster: join it with trainer nodes instead of starting a run." };
        var runDir = new Option<string?>("--run-dir") { Description = "The run directory: a new or empty one, an existing run to resume, or (with --seed) the cluster's, for its run token." };
        var runs = new Option<string?>("--runs") { Description = "Parent folder for a new run directory (default runs)." };
        var set = NodeCommand.SetOption();
        var otlp = TelemetryOptions.Otlp();
        foreach (var o in new Option[] { config, gpus, cpu, seed, runDir, runs, set, otlp })
            command.Options.Add(o);
        Cli.SetAction(command, parse =>
        {
            var (nodeSets, experimentSets) = NodeCommand.SplitOverrides(parse.GetValue(set) ?? []);
            string? seedAddress = parse.GetValue(seed);
            string? run = parse.GetValue(runDir);
            string? experiment = parse.GetValue(config);
            if (seedAddress is null && experiment is null && (run is null || !File.Exists(RunDirectory.ConfigOf(run))))
                throw new ConfigException("give --config <experiment.conf> for a new run, --run-dir <run> to resume one, or --seed host:port to join a cluster.");
            if (seedAddress is not null && (experiment is not null || experimentSets.Length > 0))
                throw new ConfigException("--seed joins a running cluster, whose coordinator has the experiment: do not give --config or experiment --set keys.");
            if (seedAddress is null && experiment is not null)
                run ??= Path.Combine(parse.GetValue(runs) ?? "runs", NewRunName(experiment, experimentSets));
            var devices = Devices(parse.GetValue(gpus), parse.GetValue(cpu));
            if (parse.GetValue(cpu) is not null && seedAddress is null)
                experimentSets = [.. experimentSets, "trainer.device=\"cpu\""];
            var plan = new Launcher.Plan(devices, seedAddress, experiment, run is null ? null : Path.GetFullPath(run), nodeSets, experimentSets, parse.GetValue(otlp));
            return new Launcher(plan).Run();
        });
        return command;
    }

    /// <summary>runs/&lt;time&gt;_&lt;name&gt;_&lt;precision&gt;, named as `train` names it, decided here so every process uses the same one.</summary>
    private static string NewRunName(string experiment, IReadOnlyList<string> sets) =>
        NodeServicesFactory.NewRunName(HoconFile.Load(experiment, sets), experiment);

    private static List<string?> Devices(string? gpus, int? cpu)
    {
        if (gpus is not null && cpu is not null) throw new ConfigException("give --gpus or --cpu, not both.");
        if (cpu is int n)
            return n is >= 1 and <= 64 ? Enumerable.Repeat<string?>(null, n).ToList() : throw new ConfigException($"--cpu {n}: between 1 and 64 processes.");
        if (gpus is not null)
        {
            var ids = gpus.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            if (ids.Count == 0 || ids.Any(i => !int.TryParse(i, NumberStyles.None, CultureInfo.InvariantCulture, out _)) || ids.Distinct().Count() != ids.Count)
                throw new ConfigException($"--gpus '{gpus}': a comma-separated list of distinct GPU ids, e.g. --gpus 0,1.");
            return ids.Cast<string?>().ToList();
        }
        // The GPUs this process sees: CUDA_VISIBLE_DEVICES narrows them, and each child gets one of its entries.
        int count = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
        if (count == 0) throw new ConfigException("no CUDA device is visible to this process; --cpu N starts N CPU trainer processes.");
        var visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return (visible is { Length: > 0 } ? visible.Take(count) : Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)))
            .Cast<string?>().ToList();
    }
}
