using LiteVae.Host.Terminal;
using System.CommandLine;
using System.Diagnostics;
using LiteVae.Actors.Telemetry;
using LiteVae.Data;
using LiteVae.Data.Decoding;
using LiteVae.Data.Shards;
using LiteVae.Host.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary><c>litevae shards pack|check</c>: make WebDataset shards from a folder, and audit shards.</summary>
internal static class ShardsCommand
{
    public static Command Create()
    {
        var shards = new Command("shards", "Make WebDataset tar shards from a folder of images, and check shards for bad samples.");
        shards.Subcommands.Add(PackCommand());
        shards.Subcommands.Add(CheckCommand());
        return shards;
    }

    private static Command PackCommand()
    {
        var input = new Option<string>("--input") { Description = "Folder of images (searched recursively; .cls/.json/.txt files with the same name go along).", Required = true };
        var output = new Option<string>("--output") { Description = "Folder for the shards (created if needed).", Required = true };
        var maxCount = new Option<int>("--max-count") { Description = "Samples per shard at most.", DefaultValueFactory = _ => 1000 };
        var maxSize = new Option<double>("--max-size") { Description = "Shard size in MB at most.", DefaultValueFactory = _ => 512 };
        var prefix = new Option<string>("--prefix") { Description = "Shard names are <prefix>-000000.tar, ...", DefaultValueFactory = _ => "shard" };
        var seed = new Option<long>("--seed") { Description = "Shuffle images with this seed before packing, so every shard is a mix.", DefaultValueFactory = _ => 0 };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "Keep the sorted path order instead of shuffling." };
        var fullDecode = new Option<bool>("--full-decode") { Description = "Decode every image completely to verify it (slower; default checks headers and JPEG endings)." };
        var classes = new Option<bool>("--class-from-folder") { Description = "Add a .cls entry: the index of the image's top-level folder (ImageNet layout); names go to <prefix>-classes.txt." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace existing <prefix>-*.tar shards in the output folder." };
        var workers = new Option<int>("--workers") { Description = "Threads that read and check images.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Skip images with more pixels than this.", DefaultValueFactory = _ => DecodeOptions.Default.MaxPixels };
        var otlp = TelemetryOptions.Otlp();
        var command = new Command("pack", "Pack a folder of images into WebDataset tar shards.");
        foreach (var o in new Option[] { input, output, maxCount, maxSize, prefix, seed, noShuffle, fullDecode, classes, overwrite, workers, maxPixels, otlp })
            command.Options.Add(o);
        Cli.SetAction(command, parse => Pack(new PackOptions
        {
            Input = parse.GetValue(input)!,
            Output = parse.GetValue(output)!,
            MaxCount = parse.GetValue(maxCount),
            MaxBytes = (long)(parse.GetValue(maxSize) * (1 << 20)),
            Prefix = parse.GetValue(prefix)!,
            ShuffleSeed = parse.GetValue(noShuffle) ? null : parse.GetValue(seed),
            FullDecode = parse.GetValue(fullDecode),
            ClassFromFolder = parse.GetValue(classes),
            Overwrite = parse.GetValue(overwrite),
            Workers = parse.GetValue(workers),
            Decode = DecodeOptions.Default with { MaxPixels = parse.GetValue(maxPixels) },
        }, Console.Out, ConsoleOutput.Interactive, parse.GetValue(otlp)));
        return command;
    }

    private static Command CheckCommand()
    {
        var sources = new Argument<string[]>("shards") { Description = "Shard files, brace patterns (train-{000000..000009}.tar), wildcards, URLs or folders.", Arity = ArgumentArity.OneOrMore };
        var headerOnly = new Option<bool>("--header-only") { Description = "Check image headers only, without decoding pixels (faster)." };
        var workers = new Option<int>("--workers") { Description = "Shards checked in parallel.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Images with more pixels than this count as bad.", DefaultValueFactory = _ => DecodeOptions.Default.MaxPixels };
        var command = new Command("check", "Read shards like training does; count samples and list bad ones with key and reason. Exit code 1 if any are bad.");
        command.Arguments.Add(sources);
        command.Options.Add(headerOnly);
        command.Options.Add(workers);
        command.Options.Add(maxPixels);
        Cli.SetAction(command, parse => Check(parse.GetValue(sources)!, !parse.GetValue(headerOnly), parse.GetValue(workers),
            DecodeOptions.Default with { MaxPixels = parse.GetValue(maxPixels) }, Console.Out));
        return command;
    }

    internal static int Pack(PackOptions options, TextWriter output, bool interactive = false, string? otlp = null)
    {
        using var trace = CommandTrace.Start("shards", "shards pack", otlp, [new(TelemetryTags.ShardPath, options.Output)]);
        return trace.Run(() => Pack(options, output, interactive, trace.Span));
    }

    private static int Pack(PackOptions options, TextWriter output, bool interactive, Activity? span)
    {
        var clock = Stopwatch.StartNew();
        var display = new ConsoleProgress(output, interactive, TimeSpan.FromSeconds(10));
        var progress = new SyncProgress<PackProgress>(p =>
        {
            double rate = p.Done / Math.Max(p.Elapsed.TotalSeconds, 1e-3);
            display.Report($"packing {p.Done:N0}/{p.Total:N0} images ({100.0 * p.Done / Math.Max(p.Total, 1):F1}%) | {p.Shards} shards | " +
                           $"{p.Bytes / 1e6:F1} MB | {rate:F0} img/s | ETA {ConsoleProgress.Eta(p.Done, p.Total, p.Elapsed)}");
        });
        PackResult result;
        try
        {
            result = ShardPacker.Pack(options, progress);
        }
        finally
        {
            display.Complete();
        }
        long bytes = result.Shards.Sum(s => s.Bytes);
        span?.SetTag(TelemetryTags.Samples, result.Packed);
        span?.SetTag(TelemetryTags.BadSamples, result.Skipped.Count);
        span?.SetTag(TelemetryTags.Bytes, bytes);
        span?.SetTag("litevae.shards", result.Shards.Count);
        LiteVaeTelemetry.Default.BadSamples.Add(result.Skipped.Count, new KeyValuePair<string, object?>(TelemetryTags.Stage, "pack"));
        output.WriteLine($"packed {result.Packed:N0} images into {result.Shards.Count} shards ({bytes / 1e6:F1} MB) in {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"source pattern: {result.Pattern}");
        if (result.Skipped.Count > 0)
        {
            output.WriteLine($"skipped {result.Skipped.Count} bad images:");
            foreach (var p in result.Skipped)
                output.WriteLine($"  {p.Reason.Name()}: {p.Key}: {p.Detail}");
        }
        return 0;
    }

    internal static int Check(IReadOnlyList<string> specs, bool fullDecode, int workers, DecodeOptions decode, TextWriter output)
    {
        var shards = ShardSpec.Resolve(specs);
        var gate = new object();
        var reports = ShardChecker.Check(shards, fullDecode, decode, workers, report =>
        {
            lock (gate)
            {
                output.WriteLine(report.Unreadable
                    ? $"{report.Shard}: UNREADABLE: {report.Problems[0].Detail}"
                    : $"{report.Shard}: {report.Samples:N0} samples, {report.Good:N0} good" + (report.Bad > 0 ? $", {report.Bad:N0} bad" : ""));
                foreach (var p in report.Problems.Where(p => !(p.Reason == BadReason.UnreadableShard && p.Key is null)))
                    output.WriteLine($"  {p.Reason.Name(),-16} key {p.Key ?? "-"}: {p.Detail}");
            }
        });
        long samples = reports.Sum(r => r.Samples), good = reports.Sum(r => r.Good);
        int unreadable = reports.Count(r => r.Unreadable);
        long problems = reports.Sum(r => r.Problems.Count);
        var byReason = reports.SelectMany(r => r.Problems).GroupBy(p => p.Reason.Name()).Select(g => $"{g.Key} {g.Count()}");
        output.WriteLine($"total: {reports.Count} shards, {samples:N0} samples, {good:N0} good, {samples - good:N0} bad" +
                         (samples > 0 ? $" ({100.0 * (samples - good) / samples:F2}%)" : "") +
                         (unreadable > 0 ? $", {unreadable} shards unreadable" : "") +
                         (problems > 0 ? $"; by reason: {string.Join(", ", byReason)}" : ""));
        return problems == 0 ? 0 : Cli.ExitUserError;
    }

    /// <summary>Progress reported on the calling thread (System.Progress posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
