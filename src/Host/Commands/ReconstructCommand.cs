using System.CommandLine;
using LiteVae.Data.Imaging;
using LiteVae.Host.Inference;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>`litevae reconstruct`: image in, image out (encode, posterior mode, decode) for a quick look.</summary>
internal static class ReconstructCommand
{
    public static Command Create()
    {
        var command = new Command("reconstruct",
            "Encode and decode images (posterior mode, no sampling) for a quick look at reconstruction quality. " +
            "--input is an image or a folder (sorted file names; one size per run, multiples of 8). --output is a " +
            ".png file for a single input image, otherwise a folder that receives <name>.png per input.");
        var options = new ModelCommandOptions();
        options.AddTo(command);
        var input = new Option<string>("--input") { Description = "An image file, or a folder of images.", Required = true };
        var output = new Option<string>("--output") { Description = "A .png file (single input) or a folder.", Required = true };
        command.Options.Add(input);
        command.Options.Add(output);
        Cli.SetAction(command, parse => Run(parse, options, parse.GetValue(input)!, parse.GetValue(output)!));
        return command;
    }

    private static int Run(ParseResult parse, ModelCommandOptions options, string input, string output)
    {
        var files = ImageInputs.Resolve(input);
        bool singleFile = output.EndsWith(".png", StringComparison.OrdinalIgnoreCase);
        if (singleFile && files.Count != 1)
            throw new ArgumentException($"--output {output}: {files.Count} input images need an output folder, not one .png file.");
        if (!singleFile && File.Exists(output))
            throw new ArgumentException($"--output {output}: is a file; give a folder (or a .png file for one input image).");
        var targets = singleFile ? [output] : files.Select(f => Path.Combine(output, Path.GetFileNameWithoutExtension(f) + ".png")).ToList();
        if (targets.Distinct().Count() != targets.Count)
            throw new ArgumentException($"{input}: two inputs differ only in extension and would write the same .png; rename one.");
        int batch = options.BatchSize(parse);
        using var model = options.LoadModel(parse, ModelPart.Both, out var device, out _);
        int multiple = model.Config.Encoder.Downsampling;
        (int, int)? size = null;
        int done = 0;
        using (no_grad())
            foreach (var chunk in files.Chunk(batch))
            {
                using var scope = NewDisposeScope();
                var x = PixelConversion.ToModelInput(ImageInputs.ReadBatch(chunk, multiple, ref size).to(device));
                using var posterior = model.Encode(x);
                var images = model.Decode(posterior.Mean);
                ImageInputs.WritePngs(PixelConversion.ToPixels(images), targets.Skip(done).Take(chunk.Length).ToList());
                done += chunk.Length;
            }
        Console.WriteLine($"reconstructed {done} image(s) to {(singleFile ? output : output + "/")}.");
        return 0;
    }
}
