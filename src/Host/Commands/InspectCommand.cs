using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LiteVae.Host.Config;
using LiteVae.Host.Inspection;
using LiteVae.Model.Analysis;

namespace LiteVae.Host.Commands;

/// <summary>`litevae inspect`: parameters and multiply-accumulates per module and in total.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var command = new Command("inspect",
            "Count the parameters and multiply-accumulates (MACs, per image) of every model part a config file " +
            "describes (model.encoder, model.decoder, ...), per top-level module and in total. MACs cover convolutions " +
            "and linear layers (as in the reference's tables), measured with a shape-only forward at the given resolution; " +
            "no weights are needed.");
        var model = new Option<string>("--model") { Description = "Model config (HOCON), e.g. configs/model/litevae-b-f8c12.conf.", Required = true };
        var resolution = new Option<int>("--resolution") { Description = "Image height and width in pixels.", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        command.Options.Add(model);
        command.Options.Add(resolution);
        command.Options.Add(json);
        Cli.SetAction(command, parse => Run(parse.GetValue(model)!, parse.GetValue(resolution), parse.GetValue(json)));
        return command;
    }

    private sealed record PartResult(InspectPart Part, ModelProfile Profile);

    private static int Run(string modelPath, int resolution, bool json)
    {
        if (resolution < 1)
            throw new ArgumentException($"--resolution {resolution}: must be positive.");
        var file = HoconFile.Load(modelPath);
        var parts = InspectCatalog.PartsOf(file, resolution);
        if (parts.Count == 0)
            throw new ConfigException($"{modelPath}: no model parts found (expected a model.encoder, model.decoder or other model section).");
        var results = new List<PartResult>();
        foreach (var part in parts)
        {
            using var module = part.Build();
            module.eval();
            results.Add(new PartResult(part, ModelProfiler.Profile(module, batch => part.Forward(module, batch))));
        }
        Console.Write(json ? Json(modelPath, resolution, results) : Table(modelPath, resolution, results));
        return 0;
    }

    private static string Table(string path, int resolution, List<PartResult> results)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"{path} at {resolution} x {resolution} (MACs per image; convolutions and linear layers)");
        foreach (var note in results.SelectMany(r => r.Part.Notes).Distinct())
            sb.AppendLine($"note: {note}");
        sb.AppendLine();
        sb.AppendLine($"{"module",-36} {"parameters",14} {"GMACs",12}");
        foreach (var r in results)
        {
            sb.AppendLine(string.Format(inv, "{0,-36} {1,14:N0} {2,12:F3}", $"{r.Part.Name} ({r.Part.Input})", r.Profile.Parameters, r.Profile.Macs / 1e9));
            foreach (var c in r.Profile.Children)
                sb.AppendLine(string.Format(inv, "{0,-36} {1,14:N0} {2,12:F3}", "  " + c.Name, c.Parameters, c.Macs / 1e9));
            if (r.Profile.Note is not null)
                sb.AppendLine($"  note: {r.Profile.Note}");
            if (r.Profile.Uncounted.Count > 0)
                sb.AppendLine($"  warning: MACs not counted for {string.Join(", ", r.Profile.Uncounted)} (weights never ran as modules)");
        }
        sb.AppendLine(string.Format(inv, "{0,-36} {1,14:N0} {2,12:F3}", "total", results.Sum(r => r.Profile.Parameters), results.Sum(r => r.Profile.Macs) / 1e9));
        return sb.ToString();
    }

    private static string Json(string path, int resolution, List<PartResult> results)
    {
        var doc = new
        {
            model = path,
            resolution,
            macs_per = "image",
            parts = results.Select(r => new
            {
                name = r.Part.Name,
                input = r.Part.Input,
                parameters = r.Profile.Parameters,
                macs = r.Profile.Macs,
                method = r.Profile.Method == ProfileMethod.ShapeOnly ? "shape-only" : "forward",
                notes = r.Part.Notes.Concat(r.Profile.Note is null ? [] : [r.Profile.Note]).ToArray(),
                uncounted = r.Profile.Uncounted,
                modules = r.Profile.Children.Select(c => new { name = c.Name, parameters = c.Parameters, macs = c.Macs }),
            }),
            total = new { parameters = results.Sum(r => r.Profile.Parameters), macs = results.Sum(r => r.Profile.Macs) },
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine;
    }
}
