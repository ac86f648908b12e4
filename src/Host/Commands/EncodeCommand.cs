using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LiteVae.Host.Inference;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Distributions;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>`litevae encode`: images to posterior moments (mean, logvar) in a safetensors file.</summary>
internal static class EncodeCommand
{
    /// <summary>Latents-file metadata: "true" when mean/logvar were multiplied by litevae.latent_scale_factor.</summary>
    public const string ScaledKey = "litevae.scaled";

    /// <summary>The latent scale factor stored in a weights file by `latent-stats --write`, if any.</summary>
    public static double? StoredScaleFactor(string weightsPath) =>
        Safetensors.ReadHeader(weightsPath).Metadata.TryGetValue(LatentStatistics.ScaleFactorKey, out var text)
        && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && f > 0 && double.IsFinite(f)
            ? f : null;

    public static Command Create()
    {
        var command = new Command("encode",
            "Encode images to latents. Images (PNG/JPEG/WebP) are read as RGB uint8 and mapped with x/127.5 - 1; " +
            "a folder is read in sorted file-name order, and all images must share one size (multiples of 8). " +
            "The output .safetensors holds float32 tensors 'mean' and 'logvar' (N x nz x H/8 x W/8) and the input " +
            "file names in its metadata ('inputs'). When the weights carry a latent scale factor (from 'litevae latent-stats " +
            "--write') it is reported, and --scaled multiplies the latents by it (mean x f, logvar + 2 ln f), as latent " +
            "diffusion feeds them to its model; 'litevae decode' undoes it.");
        var options = new ModelCommandOptions();
        options.AddTo(command);
        var input = new Option<string>("--input") { Description = "An image file, or a folder of images.", Required = true };
        var output = new Option<string>("--output") { Description = "The latents file to write (.safetensors).", Required = true };
        var scaled = new Option<bool>("--scaled") { Description = "Multiply the latents by the weights' latent scale factor (litevae.latent_scale_factor)." };
        command.Options.Add(input);
        command.Options.Add(output);
        command.Options.Add(scaled);
        Cli.SetAction(command, parse => Run(parse, options, parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(scaled)));
        return command;
    }

    private static int Run(ParseResult parse, ModelCommandOptions options, string input, string output, bool scaled)
    {
        if (!output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--output {output}: latents are written as .safetensors; give a file name ending in .safetensors.");
        var files = ImageInputs.Resolve(input);
        int batch = options.BatchSize(parse);
        using var model = options.LoadModel(parse, ModelPart.Encoder, out var device, out var dtype);
        double? factor = StoredScaleFactor(parse.GetValue(options.Weights)!);
        if (scaled && factor is null)
            throw new ArgumentException($"--scaled: {parse.GetValue(options.Weights)} has no latent scale factor; " +
                "compute and store one with 'litevae latent-stats --weights <file> --data <images> --write'.");
        int multiple = model.Config.Encoder.Downsampling;

        var means = new List<Tensor>();
        var logvars = new List<Tensor>();
        (int, int)? size = null;
        try
        {
            using (no_grad())
                foreach (var chunk in files.Chunk(batch))
                {
                    using var scope = NewDisposeScope();
                    var pixels = ImageInputs.ReadBatch(chunk, multiple, ref size);
                    var x = PixelConversion.ToModelInput(pixels.to(device));
                    using var posterior = model.Encode(x);
                    means.Add(scope.MoveToOuter(posterior.Mean.to(float32).cpu()));
                    logvars.Add(scope.MoveToOuter(posterior.LogVar.to(float32).cpu()));
                }
            using var mean = cat(means, 0);
            using var logvar = cat(logvars, 0);
            var metadata = new Dictionary<string, string>
            {
                ["inputs"] = JsonSerializer.Serialize(files.Select(Path.GetFileName)),
                ["model"] = options.ModelSource(parse),
                ["format"] = "pt",
            };
            if (factor is double f)
            {
                metadata[LatentStatistics.ScaleFactorKey] = f.ToString("R", CultureInfo.InvariantCulture);
                if (scaled)
                {
                    // Scaling the variable scales the posterior: mean x f, std x f.
                    mean.mul_(f);
                    logvar.add_(2 * Math.Log(f));
                    metadata[ScaledKey] = "true";
                }
                Console.WriteLine($"latent scale factor {f:G6} (stored in the weights){(scaled ? ": latents multiplied by it" : "; --scaled applies it")}.");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
            Safetensors.Save(output, [new("mean", mean), new("logvar", logvar)], metadata);
            Console.WriteLine($"encoded {files.Count} image(s) to {output}: mean and logvar [{string.Join(", ", mean.shape)}] ({device.type.ToString().ToLowerInvariant()}, {dtype}).");
            return 0;
        }
        finally
        {
            foreach (var t in means.Concat(logvars)) t.Dispose();
        }
    }
}
