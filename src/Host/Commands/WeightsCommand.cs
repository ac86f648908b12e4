using System.CommandLine;
using LiteVae.Host.Config;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Perceptual;

namespace LiteVae.Host.Commands;

/// <summary>
/// <c>litevae weights list</c>: which pretrained files the weights folder has, and where to get the others.
/// <c>litevae weights convert in.pth out.safetensors</c>: rewrites a PyTorch state dict as safetensors,
/// reading the pickle without running any of its code (zip and legacy torch.save layouts).
/// </summary>
internal static class WeightsCommand
{
    public static Command Create()
    {
        var command = new Command("weights", "Pretrained weight files for LPIPS and rFID: list what is present, convert .pth to safetensors.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Convert());
        return command;
    }

    private static Command List()
    {
        var folder = new Option<string?>("--weights-dir") { Description = $"Weights folder (default: ${WeightsFolder.EnvironmentVariable}, else ~/.cache/litevae/weights)." };
        var command = new Command("list", "Show which well-known weight files are present in the weights folder.");
        command.Options.Add(folder);
        Cli.SetAction(command, parse =>
        {
            var files = WeightsFolder.Resolve(parse.GetValue(folder));
            Console.WriteLine($"weights folder: {files.Folder} ({files.Origin})");
            int missing = 0;
            foreach (var info in WeightFiles.Known)
            {
                var found = files.Find(info.Id);
                if (found.IsAvailable) Console.WriteLine($"  found    {Path.GetFileName(found.Value)}  {info.Purpose}");
                else
                {
                    missing++;
                    Console.WriteLine($"  missing  {info.Stem}.pth  {info.Purpose}\n           get it from {info.Url}");
                }
            }
            if (missing > 0)
                Console.WriteLine($"{missing} file(s) missing: the metrics and loss terms that need them report 'unavailable'.");
            return 0;
        });
        return command;
    }

    private static Command Convert()
    {
        var input = new Argument<string>("input") { Description = "A PyTorch state dict (.pth / .pt / .bin written by torch.save)." };
        var output = new Argument<string>("output") { Description = "The safetensors file to write." };
        var force = new Option<bool>("--force") { Description = "Overwrite the output if it exists." };
        var command = new Command("convert", "Convert a PyTorch state dict to safetensors without executing pickle code.");
        command.Arguments.Add(input);
        command.Arguments.Add(output);
        command.Options.Add(force);
        Cli.SetAction(command, parse =>
        {
            string src = parse.GetValue(input)!, dst = parse.GetValue(output)!;
            if (!dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"{dst}: the output name must end in .safetensors.");
            if (File.Exists(dst) && !parse.GetValue(force))
                throw new IOException($"{dst} already exists; pass --force to overwrite it.");
            var tensors = PyTorchFile.Load(src);
            try
            {
                if (tensors.Count == 0) throw new InvalidDataException($"{src}: holds no tensors.");
                string temp = dst + ".tmp-" + Environment.ProcessId;
                try
                {
                    Safetensors.Save(temp, tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal),
                        new Dictionary<string, string> { ["format"] = "pt", ["converted_from"] = Path.GetFileName(src) });
                    File.Move(temp, dst, overwrite: true);
                }
                finally { if (File.Exists(temp)) File.Delete(temp); }
                long elements = tensors.Values.Sum(t => t.numel());
                Console.WriteLine($"wrote {dst}: {tensors.Count} tensors, {elements:N0} values (from {src}).");
                return 0;
            }
            finally { foreach (var t in tensors.Values) t.Dispose(); }
        });
        return command;
    }
}
