using System.CommandLine;
using Akka.Actor;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;
using LiteVae.Host.Node;
using LiteVae.Host.Config;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae train --config experiment.conf [--resume run-dir] [--set k=v]</c>: every role in this process
/// (hocon/single-node.conf: a cluster of one on 127.0.0.1), until the step budget is spent.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train",
            "Train LiteVAE from an experiment config (configs/*.conf): every role (coordinator, data, trainer, eval) in this " +
            "process, a cluster of one on 127.0.0.1. Writes runs/<yyyyMMdd-HHmmss>_<name>_<precision>/ with config.conf and checkpoints/.\n" +
            "  new run:      litevae train --config configs/quickstart.conf\n" +
            "  resume:       litevae train --resume runs/<run>            (weights, optimizer, step, data position)\n" +
            "  phase A -> B: litevae train --config configs/phase-b.conf --init-from runs/<phase-a run>   (weights only)");
        var config = new Option<string?>("--config") { Description = "Experiment config file (HOCON). Not needed with --resume." };
        var set = NodeCommand.SetOption();
        var resume = new Option<string?>("--resume") { Description = "Continue a run directory from its last checkpoint (uses the run's own config.conf)." };
        var initFrom = new Option<string?>("--init-from") { Description = "Load autoencoder weights from a run, checkpoint directory or .safetensors file; fresh optimizer, step 0." };
        var device = new Option<string?>("--device") { Description = "auto, cpu, cuda or cuda:N (overrides trainer.device)." };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Total steps (overrides trainer.max-steps)." };
        var runDir = new Option<string?>("--run-dir") { Description = "Use this (new or empty) directory instead of runs/<timestamp>_<name>_<precision>." };
        var runs = new Option<string?>("--runs") { Description = "Parent folder for new run directories (default runs)." };
        var weights = new Option<string?>("--weights") { Description = "Folder with the LPIPS weight files (default $LITEVAE_WEIGHTS or ~/.cache/litevae/weights)." };
        // Test hook: slows checkpoint writing down so a test can kill the process mid-write.
        var writeDelay = new Option<int>("--debug-checkpoint-file-delay-ms") { Hidden = true, DefaultValueFactory = _ => 0 };
        foreach (var o in new Option[] { config, set, resume, initFrom, device, maxSteps, runDir, runs, weights, writeDelay })
            command.Options.Add(o);
        Cli.SetAction(command, parse =>
        {
            if (parse.GetValue(resume) is not null && (parse.GetValue(config) is not null || parse.GetValue(initFrom) is not null))
                throw new ConfigException("--resume continues a run with its own config.conf: do not combine it with --config or --init-from.");
            if (parse.GetValue(resume) is null && parse.GetValue(config) is null)
                throw new ConfigException("give --config <file> for a new run, or --resume <run directory>.");
            var (nodeSets, experimentSets) = NodeCommand.SplitOverrides(parse.GetValue(set) ?? []);
            var experiment = experimentSets.ToList();
            var node = nodeSets.ToList();
            if (parse.GetValue(maxSteps) is long m) experiment.Add($"trainer.max-steps={m}");
            if (parse.GetValue(device) is string d) experiment.Add($"trainer.device=\"{d}\"");
            if (parse.GetValue(initFrom) is string i) experiment.Add($"trainer.init-from=\"{i}\"");
            if (parse.GetValue(runDir) is string r) node.Add($"litevae.run.run-dir=\"{r}\"");
            if (parse.GetValue(runs) is string rs) node.Add($"litevae.run.runs-root=\"{rs}\"");
            string preset = Path.Combine(AppContext.BaseDirectory, "hocon", "single-node.conf");
            var file = HoconFile.Load(preset, node);
            var extras = new NodeExtras(parse.GetValue(weights), parse.GetValue(writeDelay));
            var failed = new ProgressPrinter.Failure();
            int code = NodeCommand.Run(file, parse.GetValue(config), parse.GetValue(resume), experiment, extras, system =>
                system.ActorOf(Props.Create(() => new ProgressPrinter(failed)), "progress-printer"));
            return failed.Reason is null ? code : 1;
        });
        return command;
    }

    /// <summary>Prints progress lines and ends the process when the run is finished.</summary>
    private sealed class ProgressPrinter : ReceiveActor
    {
        /// <summary>Set when the trainer could not start: the process ends with exit code 1.</summary>
        public sealed class Failure { public string? Reason; }

        public ProgressPrinter(Failure failure)
        {
            Receive<TrainerProtocol.TrainerProgress>(p =>
            {
                string losses = string.Join("  ", p.Losses.OrderBy(kv => kv.Key).Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value:G4}")));
                Console.WriteLine(FormattableString.Invariant($"step {p.Step,7}  {p.ImagesPerSecond,7:F1} img/s  data wait {p.DataWaitFraction * 100,5:F1}%  {losses}"));
            });
            Receive<DeviceTrainer.TrainerRestored>(r => Console.WriteLine(r.Checkpoint is null
                ? $"training on {r.Device} from step 0"
                : $"resumed {r.Checkpoint} at step {r.Step} on {r.Device}"));
            Receive<DeviceTrainer.TrainerStartFailed>(f =>
            {
                failure.Reason = f.Reason;
                Console.Error.WriteLine($"error: the trainer could not start: {f.Reason}");
                CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
            });
            Receive<RunFinished>(f =>
            {
                Console.WriteLine($"finished at step {f.Step} ({f.Reason}); checkpoint: {f.CheckpointPath ?? "none"}");
                CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
            });
        }

        protected override void PreStart()
        {
            Context.System.EventStream.Subscribe(Self, typeof(TrainerProtocol.TrainerProgress));
            Context.System.EventStream.Subscribe(Self, typeof(RunFinished));
            Context.System.EventStream.Subscribe(Self, typeof(DeviceTrainer.TrainerRestored));
            Context.System.EventStream.Subscribe(Self, typeof(DeviceTrainer.TrainerStartFailed));
        }
    }
}
