using System.CommandLine;
using System.Text.Json;
using LiteVae.Data.Imaging;
using LiteVae.Host.Inference;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Distributions;
using LiteVae.Model.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>`litevae decode`: latents to images (PNG files, or a safetensors tensor).</summary>
internal static class DecodeCommand
{
    public static Command Create()
    {
        var command = new Command("decode",
            "Decode latents to images. Reads tensor 'mean' (or 'z' when there is no 'mean') of shape N x nz x h x w " +
            "from a .safetensors file, e.g. one written by 'litevae encode'. An --output folder receives PNGs " +
            "(clamped to [-1, 1], mapped to 0..255 and rounded), named after the encoded files when the latents " +
            "file lists them, else 000000.png, 000001.png, ...; an --output ending in .safetensors receives tensor " +
            "'images' (float32, N x 3 x 8h x 8w, not clamped). Latents written by 'encode --scaled' are divided by their scale factor first.");
        var options = new ModelCommandOptions();
        options.AddTo(command);
        var input = new Option<string>("--input") { Description = "The latents file (.safetensors).", Required = true };
        var output = new Option<string>("--output") { Description = "A folder for PNGs, or a .safetensors file.", Required = true };
        command.Options.Add(input);
        command.Options.Add(output);
        Cli.SetAction(command, parse => Run(parse, options, parse.GetValue(input)!, parse.GetValue(output)!));
        return command;
    }

    private static int Run(ParseResult parse, ModelCommandOptions options, string input, string output)
    {
        var header = Safetensors.ReadHeader(input);
        var entry = header.Entries.FirstOrDefault(e => e.Name == "mean") ?? header.Entries.FirstOrDefault(e => e.Name == "z")
            ?? throw new ArgumentException($"{input}: no tensor 'mean' or 'z' (it has: {string.Join(", ", header.Entries.Select(e => e.Name))}).");
        int batch = options.BatchSize(parse);
        using var model = options.LoadModel(parse, ModelPart.Decoder, out var device, out var dtype);
        double unscale = 1.0;
        if (header.Metadata.TryGetValue(EncodeCommand.ScaledKey, out var scaled) && scaled == "true")
        {
            if (!header.Metadata.TryGetValue(LatentStatistics.ScaleFactorKey, out var text)
                || !double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double f) || !(f > 0))
                throw new ArgumentException($"{input}: marked as scaled ({EncodeCommand.ScaledKey}) but without a valid {LatentStatistics.ScaleFactorKey}; re-encode it.");
            unscale = 1.0 / f;
            Console.WriteLine($"latents were scaled by {f:G6} at encode time: dividing by it before decoding.");
        }
        int nz = model.Config.EmbedDim;
        if (entry.Shape.Length != 4 || entry.Shape[1] != nz || entry.Shape[0] < 1)
            throw new ArgumentException($"{input}: tensor '{entry.Name}' has shape [{string.Join(", ", entry.Shape)}]; this model decodes N x {nz} x h x w latents.");
        if (entry.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"{input}: tensor '{entry.Name}' has dtype {entry.DType}; latents must be floating point.");

        bool toTensorFile = output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        var names = toTensorFile ? null : OutputNames(header, (int)entry.Shape[0], output);
        var loaded = Safetensors.Load(input, k => k == entry.Name);
        using var latents = loaded[entry.Name];
        var decoded = new List<Tensor>();
        try
        {
            int done = 0;
            using (no_grad())
                for (long start = 0; start < latents.shape[0]; start += batch)
                {
                    using var scope = NewDisposeScope();
                    long n = Math.Min(batch, latents.shape[0] - start);
                    var z = latents.narrow(0, start, n).to(dtype, device);
                    if (unscale != 1.0) z = z.mul(unscale);
                    var images = model.Decode(z);
                    if (toTensorFile)
                        decoded.Add(scope.MoveToOuter(images.to(float32).cpu()));
                    else
                    {
                        ImageInputs.WritePngs(PixelConversion.ToPixels(images), names!.Skip(done).Take((int)n).ToList());
                        done += (int)n;
                    }
                }
            if (toTensorFile)
            {
                using var all = cat(decoded, 0);
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
                Safetensors.Save(output, [new("images", all)], new Dictionary<string, string> { ["format"] = "pt" });
                Console.WriteLine($"decoded {all.shape[0]} latent(s) to {output}: images [{string.Join(", ", all.shape)}].");
            }
            else
                Console.WriteLine($"decoded {done} latent(s) to PNGs in {output}.");
            return 0;
        }
        finally
        {
            foreach (var t in decoded) t.Dispose();
        }
    }

    /// <summary>Output PNG paths: the encoded files' names (with .png) when the latents file lists one per latent.</summary>
    private static List<string> OutputNames(SafetensorsHeader header, int count, string folder)
    {
        if (File.Exists(folder))
            throw new ArgumentException($"--output {folder}: is a file; give a folder for PNGs or a .safetensors file name.");
        List<string>? names = null;
        if (header.Metadata.TryGetValue("inputs", out var json))
        {
            try { names = JsonSerializer.Deserialize<List<string>>(json); }
            catch (JsonException) { names = null; }
        }
        if (names is null || names.Count != count || names.Select(n => Path.GetFileNameWithoutExtension(n)).Distinct().Count() != count)
            names = Enumerable.Range(0, count).Select(i => $"{i:D6}").ToList();
        return names.Select(n => Path.Combine(folder, Path.GetFileNameWithoutExtension(n) + ".png")).ToList();
    }
}
