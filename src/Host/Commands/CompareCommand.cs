using System.CommandLine;
using LiteVae.Host.Evaluation;

namespace LiteVae.Host.Commands;

/// <summary>`litevae compare &lt;eval.json…&gt; [--reference] [--markdown]`: evaluation reports side by side.</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var command = new Command("compare",
            "Show evaluation reports (the JSON files `litevae eval` writes, e.g. runs/*/eval/step-*.json) side by side: rFID, LPIPS, " +
            "PSNR, SSIM, MS-SSIM, with the best value marked *. A folder stands for every step-*.json report in it.");
        var reports = new Argument<string[]>("reports") { Description = "Evaluation JSON files or folders of them.", Arity = ArgumentArity.OneOrMore };
        var reference = new Option<bool>("--reference") { Description = "Add the published reference rows (LiteVAE paper Table 1 ImageNet 128/256, open-litevae README)." };
        var markdown = new Option<bool>("--markdown") { Description = "Print a Markdown table." };
        command.Arguments.Add(reports);
        command.Options.Add(reference);
        command.Options.Add(markdown);
        Cli.SetAction(command, parse =>
        {
            var loaded = Expand(parse.GetValue(reports)!).Select(p => (p, EvalReport.Read(p))).ToList();
            Console.Write(CompareTable.Render(loaded, parse.GetValue(reference), parse.GetValue(markdown)));
            return 0;
        });
        return command;
    }

    /// <summary>Files as given; a folder expands to its *.json reports in name order.</summary>
    private static IEnumerable<string> Expand(IEnumerable<string> paths)
    {
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                var files = Directory.GetFiles(p, "*.json").Order(StringComparer.Ordinal).ToList();
                if (files.Count == 0) throw new FileNotFoundException($"{p}: the folder has no .json evaluation reports.");
                foreach (var f in files) yield return f;
            }
            else
            {
                yield return p;
            }
        }
    }
}
