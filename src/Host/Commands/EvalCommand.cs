using System.CommandLine;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary>
/// `litevae eval --checkpoint &lt;run | checkpoint | weights&gt; --data &lt;shards | folder&gt;`: reconstruction
/// metrics (rFID, LPIPS, PSNR, SSIM, MS-SSIM) of a checkpoint on held-out images, with a table on
/// stdout and a JSON report, grids and a per-image CSV.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var command = new Command("eval",
            "Evaluate a checkpoint: encode, take the posterior mode, decode, and score the reconstructions (rFID, LPIPS, PSNR, " +
            "SSIM, MS-SSIM) on held-out images resized (short side) and centre-cropped to --resolution. For a training run's " +
            "checkpoint the report goes to <run>/eval/step-NNNNNNNN.json with .png/-worst.png grids, a .csv of every image " +
            "(worst first) and TensorBoard scalars; otherwise to --json. Metrics whose weight files are missing are reported " +
            "as unavailable, with the reason.");
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "A run directory (its checkpoints/last), a checkpoints/step-NNNNNNNN directory, or a .safetensors weights file (with --model).",
            Required = true,
        };
        var data = new Option<string?>("--data") { Description = "Evaluation images: WebDataset shards (a .tar, a brace pattern, a folder of .tar) or a folder of images. Default: the run config's eval-data." };
        var model = new Option<string?>("--model") { Description = "Model config (HOCON). Needed for a bare weights file; for a run's checkpoint it replaces the checkpoint's own config." };
        var resolution = new Option<int>("--resolution") { Description = "Evaluation size: resize the short side, centre crop (spec 10.1: 256).", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 16 };
        var limit = new Option<long?>("--limit") { Description = "Evaluate only the first N images." };
        var json = new Option<string?>("--json") { Description = "Write the JSON report here (grids and CSV beside it); default for a run's checkpoint: <run>/eval/step-NNNNNNNN.json." };
        var weightsDir = new Option<string?>("--weights-dir") { Description = "Folder with the LPIPS/FID weight files (default: $LITEVAE_WEIGHTS, else ~/.cache/litevae/weights; see `litevae weights`)." };
        var device = new Option<string>("--device") { Description = "auto (CUDA if available), cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var precision = new Option<string>("--precision") { Description = "Model precision: fp32 or bf16 (metrics are always computed on 8-bit images in float64/fp32).", DefaultValueFactory = _ => "fp32" };
        var lpips = new Option<string>("--lpips") { Description = "LPIPS backbone: vgg (default, as the training loss), alex, or none.", DefaultValueFactory = _ => "vgg" };
        var noRfid = new Option<bool>("--no-rfid") { Description = "Skip rFID (its 2048-d matrix square root takes about a minute on a CPU)." };
        var grid = new Option<int>("--grid") { Description = "Columns of the reconstruction grid and of the worst-images grid (0: no grids).", DefaultValueFactory = _ => 8 };
        var ema = new Option<bool>("--ema") { Description = "Evaluate the checkpoint's EMA weights (ema.safetensors) instead of the raw ones." };
        var label = new Option<string?>("--label") { Description = "Name of this evaluation in reports and `litevae compare` (default: <run>@<step> or the file name)." };
        var workers = new Option<int>("--workers") { Description = "Image decode threads.", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 8) };
        var otlp = TelemetryOptions.Otlp();
        foreach (var o in new Option[] { checkpoint, data, model, resolution, batch, limit, json, weightsDir, device, precision, lpips, noRfid, grid, ema, label, workers, otlp })
            command.Options.Add(o);

        Cli.SetAction(command, parse => Run(new EvalRequest
        {
            Checkpoint = parse.GetValue(checkpoint)!,
            Data = parse.GetValue(data),
            Model = parse.GetValue(model),
            Resolution = parse.GetValue(resolution),
            Batch = parse.GetValue(batch),
            Limit = parse.GetValue(limit),
            Json = parse.GetValue(json),
            WeightsDir = parse.GetValue(weightsDir),
            Device = parse.GetValue(device)!,
            Precision = parse.GetValue(precision)!,
            Lpips = parse.GetValue(lpips)!,
            Rfid = !parse.GetValue(noRfid),
            GridImages = parse.GetValue(grid),
            Ema = parse.GetValue(ema),
            Label = parse.GetValue(label),
            DecodeWorkers = Math.Max(1, parse.GetValue(workers)),
        }, parse.GetValue(otlp)));
        return command;
    }

    private static int Run(EvalRequest request, string? otlp)
    {
        using var trace = CommandTrace.Start("eval", "eval", otlp, [new(TelemetryTags.Checkpoint, request.Checkpoint)]);
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cts.IsCancellationRequested) return; // a second Ctrl+C ends the process
            e.Cancel = true;
            cts.Cancel();
            Console.Error.WriteLine("\nCtrl+C: stopping after this batch (press again to abort).");
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return trace.Run(() =>
            {
                StandaloneEval.Run(request, Console.Out, ProgressPrinter.ForConsole(), cts.Token);
                return 0;
            });
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Console.Error.WriteLine("evaluation cancelled; no report written.");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
