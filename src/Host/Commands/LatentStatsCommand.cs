using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LiteVae.Data.Config;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Inference;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Distributions;
using LiteVae.Model.Evaluation;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>
/// `litevae latent-stats`: encodes held-out images, samples the posterior and summarises the latents: per-channel
/// and global mean/std and the latent scaling factor 1 / std that latent diffusion multiplies latents by.
/// With --write the factor (and the shift, the mean) goes into the weights file's metadata.
/// </summary>
internal static class LatentStatsCommand
{
    public static Command Create()
    {
        var command = new Command("latent-stats",
            "Latent statistics of a VAE on held-out images: encode (resize short side, centre crop to --resolution, as eval), " +
            "sample the posterior, and report per-channel and global mean/std and the latent scale factor 1/std " +
            "(latent diffusion's scale_factor; std over every latent value, unbiased). --write stores " +
            $"{LatentStatistics.ScaleFactorKey}, {LatentStatistics.ShiftFactorKey} (the mean) and {LatentStatistics.SummaryKey} in the weights " +
            "file's metadata (the file is rewritten beside itself and renamed over, tensors unchanged); 'litevae encode' then reports it.");
        var options = new ModelCommandOptions();
        command.Options.Add(options.Weights);
        command.Options.Add(options.Model);
        command.Options.Add(options.Device);
        command.Options.Add(options.Precision);
        var data = new Option<string>("--data") { Description = "Held-out images: WebDataset shards (a .tar, a brace pattern, a folder of .tar) or a folder of images.", Required = true };
        var images = new Option<long>("--images") { Description = "Encode at most this many images (in data order).", DefaultValueFactory = _ => 1000 };
        var resolution = new Option<int>("--resolution") { Description = "Resize the short side and centre crop to this size (a multiple of 8).", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass.", DefaultValueFactory = _ => 16 };
        var seed = new Option<long>("--seed") { Description = "Seed of the posterior noise (the statistics are of samples, not of the mean).", DefaultValueFactory = _ => 0 };
        var write = new Option<bool>("--write") { Description = "Store the factor, shift and summary in the weights file's metadata." };
        var workers = new Option<int>("--workers") { Description = "Image decode threads.", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 8) };
        foreach (var o in new Option[] { data, images, resolution, batch, seed, write, workers })
            command.Options.Add(o);
        Cli.SetAction(command, parse => Run(parse, options, parse.GetValue(data)!, parse.GetValue(images), parse.GetValue(resolution),
            parse.GetValue(batch), parse.GetValue(seed), parse.GetValue(write), parse.GetValue(workers)));
        return command;
    }

    private static int Run(ParseResult parse, ModelCommandOptions options, string data, long limit, int resolution, int batch, long seed, bool write, int workers)
    {
        if (limit < 2) throw new ArgumentException($"--images {limit}: need at least 2 images.");
        if (batch < 1) throw new ArgumentException($"--batch {batch}: must be at least 1.");
        string weights = parse.GetValue(options.Weights)!;
        if (write) RefuseCheckpointFile(weights);
        var config = new DataConfig { Source = [data], Resolution = resolution, BatchSize = batch, DecodeWorkers = Math.Max(1, workers) };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"--resolution/--batch: {e.Message}"); }

        using var model = options.LoadModel(parse, ModelPart.Encoder, out var device, out var dtype);
        using var stats = new LatentStatistics();
        using var generator = new Generator((ulong)seed, device);
        var progress = ProgressPrinter.ForConsole();
        var clock = Stopwatch.StartNew();
        long done = 0;
        using (var stream = EvalImageStream.Start(config))
        {
            long total = Math.Min(limit, stream.Index.TotalSamples);
            try
            {
                while (done < total && stream.Next(CancellationToken.None) is { } b)
                {
                    using (b)
                    {
                        int take = (int)Math.Min(b.Count, total - done);
                        if (take == 0) continue;
                        using var scope = NewDisposeScope();
                        using var _ = no_grad();
                        var pixels = tensor(b.Pixels.Span[..(take * b.SampleBytes)].ToArray(), [take, 3, b.Height, b.Width], ScalarType.Byte);
                        var x = pixels.to(device).to(ScalarType.Float32).div_(127.5).sub_(1.0);
                        using var posterior = model.Encode(x);
                        stats.Add(posterior.Sample(generator));
                        done += take;
                    }
                    progress.Report(new EvalProgress(done, total, clock.Elapsed));
                }
            }
            finally
            {
                progress.Done();
            }
        }
        if (done < 2) throw new InvalidDataException($"{data}: only {done} image(s) could be read; need at least 2.");
        var summary = stats.Summarize();
        Console.Write(Render(summary, done, resolution, seed, device, dtype));
        if (write)
        {
            var metadata = new Dictionary<string, string>(Safetensors.ReadHeader(weights).Metadata);
            metadata[LatentStatistics.ScaleFactorKey] = summary.ScaleFactor.ToString("R", CultureInfo.InvariantCulture);
            metadata[LatentStatistics.ShiftFactorKey] = summary.ShiftFactor.ToString("R", CultureInfo.InvariantCulture);
            metadata[LatentStatistics.SummaryKey] = JsonSerializer.Serialize(new
            {
                images = done, resolution, seed, data, mean = summary.Mean, std = summary.Std,
                channel_mean = summary.ChannelMeans, channel_std = summary.ChannelStds,
            });
            // A file that lacks its config gets the one it was just run with, so later commands need no --model.
            if (!metadata.ContainsKey(ModelConfigJson.MetadataKey))
                metadata[ModelConfigJson.MetadataKey] = ModelConfigJson.Write(model.Config);
            Safetensors.RewriteMetadata(weights, metadata);
            Console.WriteLine($"stored {LatentStatistics.ScaleFactorKey} = {summary.ScaleFactor:G6} and {LatentStatistics.ShiftFactorKey} = {summary.ShiftFactor:G6} in {weights}.");
        }
        return 0;
    }

    public static string Render(LatentSummary s, long images, int resolution, long seed, Device device, ScalarType dtype)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine($"latents of {images} image(s) at {resolution}x{resolution}, posterior samples (seed {seed}), {s.ChannelMeans.Count} channels, " +
                    $"{s.Count:N0} values ({device.type.ToString().ToLowerInvariant()}, {dtype}):");
        w.WriteLine("  channel        mean         std");
        for (int c = 0; c < s.ChannelMeans.Count; c++)
            w.WriteLine($"  {c,7} {s.ChannelMeans[c],11:F5} {s.ChannelStds[c],11:F5}");
        w.WriteLine($"  {"all",7} {s.Mean,11:F5} {s.Std,11:F5}");
        w.WriteLine($"latent scale factor (1 / std): {s.ScaleFactor:G6}");
        w.WriteLine($"latent shift factor (mean):    {s.ShiftFactor:G6}");
        return w.ToString();
    }

    /// <summary>A training checkpoint records its files' sizes; rewriting one would make the checkpoint look damaged.</summary>
    private static void RefuseCheckpointFile(string weights)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(weights))!;
        if (File.Exists(Path.Combine(dir, CheckpointStore.StateFile)))
            throw new ArgumentException($"--write {weights}: this file belongs to a training checkpoint (its {CheckpointStore.StateFile} records the " +
                "file's size); copy it out of the checkpoint first, then --write the copy.");
    }
}
