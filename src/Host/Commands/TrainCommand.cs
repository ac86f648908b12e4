using System.CommandLine;
using Akka.Actor;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Protocol;
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
        var config = new Option<string?>("--config") { Description = "experiment config, e.g. configs/quickstart.conf (not needed with --resume)" };
        var resume = new Option<string?>("--resume") { Description = "a run directory to continue from its last checkpoint (with its own config.conf)" };
        var set = NodeCommand.SetOption();
        var command = new Command("train", "Train LiteVAE: all roles in one process (a cluster of one on 127.0.0.1)");
        command.Options.Add(config);
        command.Options.Add(resume);
        command.Options.Add(set);
        Cli.SetAction(command, parse =>
        {
            string preset = Path.Combine(AppContext.BaseDirectory, "hocon", "single-node.conf");
            var (nodeSets, experimentSets) = NodeCommand.SplitOverrides(parse.GetValue(set) ?? []);
            var file = HoconFile.Load(preset, nodeSets);
            return NodeCommand.Run(file, parse.GetValue(config), parse.GetValue(resume), experimentSets, system =>
                system.ActorOf(Props.Create(() => new ProgressPrinter()), "progress-printer"));
        });
        return command;
    }

    /// <summary>Prints progress lines and ends the process when the run is finished.</summary>
    private sealed class ProgressPrinter : ReceiveActor
    {
        public ProgressPrinter()
        {
            Receive<TrainerProtocol.TrainerProgress>(p =>
            {
                string losses = string.Join("  ", p.Losses.OrderBy(kv => kv.Key).Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value:G4}")));
                Console.WriteLine(FormattableString.Invariant($"step {p.Step,7}  {p.ImagesPerSecond,7:F1} img/s  data wait {p.DataWaitFraction * 100,5:F1}%  {losses}"));
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
        }
    }
}
