using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LiteVae.Actors.Training;
using LiteVae.Data.Audit;
using LiteVae.Data.Config;
using LiteVae.Data.Shards;
using LiteVae.Host.Config;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae audit runs/&lt;run&gt;</c>: from the run directory alone (its config, shard index, last checkpoint and
/// training log) and the shard listing, how often every sample the run reached was trained: once, twice (a
/// defect), never (a defect) or skipped as bad, per epoch and for the whole run, across resumes, node losses
/// and re-formed groups. Exit code 0 when every sample was trained once or skipped, 1 otherwise.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var command = new Command("audit",
            "Check from a run directory that every sample the run reached was trained exactly once (or skipped as unreadable): " +
            "per epoch and for the whole run, across resumes and node losses. Reads the run's training log (audit/trained.bin), " +
            "its shard index and its last checkpoint. Exit code 1 when a sample was trained twice or never.");
        var run = new Argument<string>("run") { Description = "The run directory (runs/<run>)." };
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON to this file." };
        command.Arguments.Add(run);
        command.Options.Add(json);
        Cli.SetAction(command, parse =>
        {
            var (report, position, step) = Audit(parse.GetValue(run)!);
            Console.Write(Format(report, position, step));
            if (parse.GetValue(json) is { } path)
                File.WriteAllText(path, JsonSerializer.Serialize(new { step, position.NextSample, report.Steps, report.Trained, report.Skipped,
                    whole = report.Whole, report.Epochs }, new JsonSerializerOptions { WriteIndented = true }));
            var whole = report.Whole;
            return whole.Twice == 0 && whole.Never == 0 && whole.Ahead == 0 ? 0 : 1;
        });
        return command;
    }

    /// <summary>The audit of <paramref name="runDir"/> up to its last complete checkpoint.</summary>
    public static (AuditReport Report, DataPosition Position, long Step) Audit(string runDir)
    {
        string configPath = RunDirectory.ConfigOf(runDir);
        if (!File.Exists(configPath)) throw new ConfigException($"{runDir}: not a run directory (no config.conf).");
        var c = ExperimentConfigBinder.Bind(File.ReadAllText(configPath), configPath);
        var checkpoints = CheckpointStore.List(RunDirectory.CheckpointsOf(runDir));
        if (checkpoints.Count == 0) throw new ConfigException($"{runDir}: no complete checkpoint yet: nothing trained is on disk to audit.");
        var (step, last) = checkpoints[^1];
        var checkpoint = CheckpointDir.Open(last);
        var position = DataPosition.Parse(checkpoint.State.DataPosition ?? throw new InvalidDataException($"{last}: no data position saved."), last);
        var shards = c.Data.ResolveShards();
        var index = ShardIndex.FromFile(RunDirectory.DataIndexOf(runDir), shards)
                    ?? throw new ConfigException($"{RunDirectory.DataIndexOf(runDir)} is missing or does not fit the shards of data.source as they are " +
                                                 "now (a shard changed size or date): the audit needs the shards the run was trained on.");
        var order = c.Data.CreateOrder(index, DataUse.Train);
        if (order.Fingerprint != position.Order)
            throw new ConfigException($"{runDir}: the run was trained in sample order {position.Order}, the shards give {order.Fingerprint} now.");
        var log = TrainingLog.Read(runDir, step);
        return (AuditReport.Compute(order, log, position.NextSample), position, step);
    }

    public static string Format(AuditReport report, DataPosition position, long step)
    {
        var inv = CultureInfo.InvariantCulture;
        var b = new System.Text.StringBuilder();
        b.AppendLine(inv, $"audit up to the last checkpoint, step {step} (sample {position.NextSample} of the order): {report.Steps} steps on record, " +
                          $"{report.Trained} samples trained, {report.Skipped} skipped as bad");
        b.AppendLine("epoch      reached      once     twice     never       bad     ahead");
        foreach (var e in report.Epochs.Append(report.Whole))
            b.AppendLine(inv, $"{(e.Epoch < 0 ? "whole run" : $"{e.Epoch}{(e.Complete ? "" : " (part)")}"),-10} {e.Reached,8} {e.Once,9} {e.Twice,9} {e.Never,9} {e.Bad,9} {e.Ahead,9}");
        var w = report.Whole;
        b.AppendLine(w.Twice == 0 && w.Never == 0 && w.Ahead == 0
            ? "OK: every sample the run reached was trained exactly once, or skipped as unreadable."
            : $"DEFECT: {w.Twice} sample(s) trained more than once, {w.Never} never trained, {w.Ahead} trained ahead of the run's position.");
        return b.ToString();
    }
}
