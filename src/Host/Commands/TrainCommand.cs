using System.CommandLine;
using LiteVae.Host.Training;

namespace LiteVae.Host.Commands;

/// <summary>`litevae train`: run an experiment config (a plain loop over the data pipeline).</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train",
            "Train LiteVAE from an experiment config (configs/*.conf). Writes a run directory " +
            "runs/<yyyyMMdd-HHmmss>_<name>_<precision>/ with config.conf, checkpoints/, eval/ and tb/.\n" +
            "  new run:      litevae train --config configs/quickstart.conf\n" +
            "  resume:       litevae train --resume runs/<run>            (weights, optimizer, step, data position)\n" +
            "  phase A -> B: litevae train --config configs/phase-b.conf --init-from runs/<phase-a run>   (weights only)");
        var config = new Option<string?>("--config") { Description = "Experiment config file (HOCON). Not needed with --resume." };
        var set = new Option<string[]>("--set") { Description = "Override a config key, e.g. --set trainer.max-steps=500 (repeatable).", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<string?>("--resume") { Description = "Continue a run directory exactly from its last checkpoint (uses the run's own config.conf)." };
        var initFrom = new Option<string?>("--init-from") { Description = "Load autoencoder weights from a run, checkpoint directory or .safetensors file; fresh optimizer, step 0." };
        var device = new Option<string?>("--device") { Description = "auto, cpu, cuda or cuda:N (overrides trainer.device)." };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Total steps (overrides trainer.max-steps)." };
        var runDir = new Option<string?>("--run-dir") { Description = "Use this (new or empty) directory instead of runs/<timestamp>_<name>_<precision>." };
        var runs = new Option<string>("--runs") { Description = "Parent folder for new run directories.", DefaultValueFactory = _ => "runs" };
        var weights = new Option<string?>("--weights") { Description = "Folder with the LPIPS weight files (default $LITEVAE_WEIGHTS or ~/.cache/litevae/weights)." };
        // Test hook: slows checkpoint writing down so a test can kill the process mid-write.
        var writeDelay = new Option<int>("--debug-checkpoint-file-delay-ms") { Hidden = true, DefaultValueFactory = _ => 0 };
        foreach (var o in new Option[] { config, set, resume, initFrom, device, maxSteps, runDir, runs, weights, writeDelay })
            command.Options.Add(o);

        Cli.SetAction(command, parse =>
        {
            var request = new TrainRequest(
                parse.GetValue(config), parse.GetValue(set) ?? [], parse.GetValue(resume), parse.GetValue(initFrom),
                parse.GetValue(device), parse.GetValue(maxSteps), parse.GetValue(runDir), parse.GetValue(runs)!,
                parse.GetValue(weights), parse.GetValue(writeDelay));
            return TrainRun.Execute(request);
        });
        return command;
    }
}
