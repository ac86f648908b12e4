using LiteVae.Host.Terminal;
using LiteVae.Model.Checkpoints;
using System.CommandLine;
using Akka.Actor;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Telemetry;
using LiteVae.Actors.Training;
using LiteVae.Host.Node;
using LiteVae.Host.Config;
using LiteVae.Host.Evaluation;

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
            "With eval-data { } and eval.images > 0 the held-out images are evaluated (the `litevae eval` job) at step 0 and at every\n" +
            "checkpoint, into eval/step-NNNNNNNN.{json,png,csv} and tb/; the run ends with the held-out PSNR gain.\n" +
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
        var weights = new Option<string?>("--weights-dir") { Description = "Folder with the LPIPS weight files (default $LITEVAE_WEIGHTS or ~/.cache/litevae/weights; see `litevae weights list`)." };
        // Test hook: slows checkpoint writing down so a test can kill the process mid-write.
        var writeDelay = new Option<int>("--debug-checkpoint-file-delay-ms") { Hidden = true, DefaultValueFactory = _ => 0 };
        var otlp = TelemetryOptions.Otlp();
        foreach (var o in new Option[] { config, set, resume, initFrom, device, maxSteps, runDir, runs, weights, writeDelay, otlp })
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
            var failed = new RunWatcher.Failure();
            int code = NodeCommand.Run(file, parse.GetValue(config), parse.GetValue(resume), experiment, extras, system =>
                system.ActorOf(Props.Create(() => new RunWatcher(failed)), "run-watcher"), parse.GetValue(otlp), "train");
            return failed.Reason is null ? code : 1;
        });
        return command;
    }

    /// <summary>
    /// Shows the progress line (in place on a terminal; one plain line per log window otherwise) with messages
    /// above it, and ends the process when the run is finished: after the held-out evaluation of the final
    /// checkpoint (when the experiment evaluates), with the run's gain in held-out PSNR.
    /// </summary>
    private sealed class RunWatcher : ReceiveActor, IWithTimers
    {
        private sealed record EvalWaitOver;

        private static readonly TimeSpan EvalWait = TimeSpan.FromMinutes(30);
        private readonly ConsoleProgress _display = ConsoleOutput.Progress(TimeSpan.Zero);
        private TrainingProgressLine? _line;
        private TrainerProtocol.TrainerProgress? _lastProgress;
        private readonly HashSet<long> _evaluated = [];
        private long _startStep;
        private RunFinished? _finished;
        private string? _runDir;

        public ITimerScheduler Timers { get; set; } = null!;

        /// <summary>Set when the trainer could not start or the run stopped on a failure: the process ends with exit code 1.</summary>
        public sealed class Failure { public string? Reason; }

        public RunWatcher(Failure failure)
        {
            // Other code of this process prints lines too (held-out evaluation reports): above the live line.
            if (_display.Interactive) Console.SetOut(_display.LinesAbove());
            Receive<TrainerProtocol.TrainerProgress>(p =>
            {
                _lastProgress = p;
                if (_line?.Format(p) is { } line) _display.Report(line);
            });
            Receive<TrainerRestored>(r =>
            {
                _startStep = r.Step;
                _line = new TrainingProgressLine(r.Step, r.MaxSteps);
                _display.Message(r.Checkpoint is null
                    ? $"training on {r.Device} from step 0"
                    : $"resumed {r.Checkpoint} at step {r.Step} on {r.Device}");
            });
            Receive<EvaluationDone>(d =>
            {
                _runDir = d.Request.RunDir;
                long? step = RunDirectory.StepOf(d.Request.CheckpointPath);
                if (!d.Result.Ok) _display.Message($"eval of {d.Request.CheckpointPath} failed: {d.Result.Error}");
                if (step is long s) _evaluated.Add(s);
                if (_finished is { } f && step == f.Step) End(f);
            });
            Receive<TrainerStartFailed>(f =>
            {
                failure.Reason = f.Reason;
                _display.Complete();
                Console.Error.WriteLine($"error: the trainer could not start: {f.Reason}");
                CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
            });
            Receive<RunFinished>(f =>
            {
                _display.Complete();
                if (f.Failed)
                {
                    failure.Reason = f.Reason;
                    Console.Error.WriteLine($"error: the run stopped at step {f.Step}: {f.Reason}");
                }
                Console.WriteLine($"finished at step {f.Step} ({f.Reason}); checkpoint: {f.CheckpointPath ?? "none"}");
                if (_lastProgress?.Samples is { Skipped: > 0 } counts && RunDirectory.OfCheckpoint(f.CheckpointPath ?? "") is { } run)
                    Console.WriteLine($"{counts.Skipped} of {counts.Trained + counts.Skipped} samples were skipped as unreadable " +
                                      $"({string.Join(", ", counts.ByReason.Select(r => $"{r.Key} {r.Value}"))}); shard, key and reason of each: " +
                                      Path.Combine(run, LiteVae.Data.Audit.TrainingLog.Folder, LiteVae.Data.Audit.TrainingLog.SkippedFile));
                _finished = f;
                _runDir ??= f.CheckpointPath is null ? null : RunDirectory.OfCheckpoint(f.CheckpointPath);
                // The final checkpoint's evaluation is queued on this process's Evaluator: wait for it (a run that
                // wrote no new checkpoint has nothing to wait for).
                if (f.Step > _startStep && !_evaluated.Contains(f.Step) && Evaluates(_runDir))
                {
                    Console.WriteLine($"waiting for the held-out evaluation of step {f.Step} (Ctrl+C to skip it)");
                    Timers.StartSingleTimer("eval-wait", new EvalWaitOver(), EvalWait);
                }
                else
                {
                    End(f);
                }
            });
            Receive<EvalWaitOver>(_ =>
            {
                if (_finished is null) return;
                Console.WriteLine($"the evaluation of step {_finished.Step} did not finish within {EvalWait.TotalMinutes:F0} minutes; not waiting longer.");
                End(_finished);
            });
        }

        private void End(RunFinished f)
        {
            if (_finished is null) return;
            _finished = null;
            if (_runDir is not null && EvalSummary(_runDir) is { } summary) Console.WriteLine(summary);
            CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        }

        /// <summary>"held-out PSNR 11.40 dB at step 0 → 15.80 dB at step 600" from the run's eval/step-*.json reports.</summary>
        public static string? EvalSummary(string runDir)
        {
            string dir = RunDirectory.EvalOf(runDir);
            if (!Directory.Exists(dir)) return null;
            var psnr = new SortedDictionary<long, double>();
            foreach (var file in Directory.EnumerateFiles(dir, "step-*.json"))
            {
                if (RunDirectory.StepOf(file) is not long step) continue;
                try
                {
                    if (EvalReport.Read(file).Metric("psnr") is { Value: double v }) psnr[step] = v;
                }
                catch (Exception e) when (e is InvalidDataException or IOException)
                {
                    Console.WriteLine($"skipping {file}: {e.Message}");
                }
            }
            if (psnr.Count == 0) return null;
            var (s0, first) = psnr.First();
            var (s1, last) = psnr.Last();
            return psnr.Count == 1
                ? FormattableString.Invariant($"held-out PSNR {first:0.00} dB at step {s0}")
                : FormattableString.Invariant($"held-out PSNR {first:0.00} dB at step {s0} → {last:0.00} dB at step {s1}");
        }

        private static bool Evaluates(string? runDir)
        {
            if (runDir is null || !File.Exists(RunDirectory.ConfigOf(runDir))) return false;
            try { return RunEval.Enabled(ExperimentConfigBinder.Bind(File.ReadAllText(RunDirectory.ConfigOf(runDir)), RunDirectory.ConfigOf(runDir))); }
            catch (ConfigException) { return false; }
        }

        protected override void PreStart()
        {
            Context.System.EventStream.Subscribe(Self, typeof(TrainerProtocol.TrainerProgress));
            Context.System.EventStream.Subscribe(Self, typeof(RunFinished));
            Context.System.EventStream.Subscribe(Self, typeof(TrainerRestored));
            Context.System.EventStream.Subscribe(Self, typeof(EvaluationDone));
            Context.System.EventStream.Subscribe(Self, typeof(TrainerStartFailed));
        }
    }
}
