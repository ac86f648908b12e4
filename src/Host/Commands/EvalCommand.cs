using System.CommandLine;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Config;
using LiteVae.Host.Evaluation;
using LiteVae.Host.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary>
/// `litevae eval`: reconstruction metrics (rFID, LPIPS, PSNR, SSIM, MS-SSIM) of a checkpoint on held-out
/// images. Standalone (no --cluster): in this process, with a table on stdout, a JSON report, grids and a
/// per-image CSV. With --cluster: the same evaluation job on an eval node of a running cluster.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var command = new Command("eval",
            "Evaluate a checkpoint: encode, take the posterior mode, decode, and score the reconstructions (rFID, LPIPS, PSNR, " +
            "SSIM, MS-SSIM) on held-out images resized (short side) and centre-cropped to --resolution. Metrics whose weight " +
            "files are missing are reported as unavailable, with the reason.\n" +
            "  standalone (this process):\n" +
            "    litevae eval --checkpoint runs/<run> [--data <shards|folder>] [--limit N]     (its checkpoints/last)\n" +
            "    litevae eval --checkpoint runs/<run>/checkpoints/step-00001000 --data <shards>\n" +
            "    litevae eval --checkpoint weights.safetensors --model configs/model/litevae-b-f8c12.conf --data <shards> --json out.json\n" +
            "    For a training run's checkpoint the report goes to <run>/eval/step-NNNNNNNN.json with .png/-worst.png grids,\n" +
            "    a .csv of every image (worst first) and TensorBoard scalars in <run>/tb; otherwise to --json.\n" +
            "  on a running cluster (an eval node does the work, training goes on):\n" +
            "    litevae eval --cluster host:port [--checkpoint last|step-N|<dir>] [--data <shards>] [--wait] | --job <id>");
        var cluster = new Option<string?>("--cluster") { Description = "[cluster] host:port of any node of a running cluster: evaluate there instead of in this process." };
        var checkpoint = new Option<string?>("--checkpoint")
        {
            Description = "Standalone: a run directory (its checkpoints/last), a checkpoints/step-NNNNNNNN directory, or a .safetensors " +
                          "weights file (with --model); required. With --cluster: last (default), step-N, or a checkpoint directory of the run " +
                          "(a relative path that exists where you type it is sent absolute; otherwise it is taken relative to the run directory).",
        };
        var data = new Option<string?>("--data") { Description = "Evaluation images: WebDataset shards (a .tar, a brace pattern, a folder of .tar) or a folder of images. Default: the config's eval-data. " +
            "With --cluster: relative to where you type it; it must lie in the run directory, a folder of the run's data or eval-data source, or a litevae.security.data-roots folder." };
        var model = new Option<string?>("--model") { Description = "Model config (HOCON). Needed for a bare weights file that does not carry its config (metadata litevae.model); " +
                                                                 "for a run's checkpoint or a file that carries one, it replaces that config (--model wins)." };
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
        var wait = new Option<bool>("--wait") { Description = "[cluster] Wait for the job and print the metrics table (otherwise print the job id)." };
        var job = new Option<string?>("--job") { Description = "[cluster] Show the state of an earlier job instead of starting one." };
        var timeout = ClusterCommandOptions.Timeout(1800);
        timeout.Description = "[cluster] Seconds to wait with --wait.";

        Option[] standaloneOnly = [model, resolution, batch, limit, json, weightsDir, device, precision, lpips, noRfid, grid, ema, label, workers];
        Option[] clusterOnly = [wait, job, timeout];
        foreach (var o in new Option[] { cluster, checkpoint, data, otlp }.Concat(standaloneOnly).Concat(clusterOnly))
            command.Options.Add(o);
        var auth = ClientAuthOptions.AddTo(command);

        Cli.SetAction(command, parse =>
        {
            bool Given(Option o) => parse.GetResult(o) is { Implicit: false };
            if (parse.GetValue(cluster) is { } address)
            {
                if (standaloneOnly.FirstOrDefault(Given) is { } extra)
                    throw new ConfigException($"{extra.Name} applies to a standalone evaluation only: with --cluster the eval node takes the " +
                                              "model, resolution, batch size, device and weights from the run's experiment config.");
                // The command's span is the root of the trace: coordinator → eval node spans become its children.
                string spec = parse.GetValue(checkpoint) ?? "last";
                using var trace = CommandTrace.Start("cli", "eval", parse.GetValue(otlp),
                    [new(TelemetryTags.Peer, address), new("litevae.eval.checkpoint_spec", spec)]);
                return trace.Run(() => ClusterEval.Run(address, spec, parse.GetValue(data), parse.GetValue(wait),
                    parse.GetValue(job), TimeSpan.FromSeconds(parse.GetValue(timeout)), auth.Read(parse), trace.Span).GetAwaiter().GetResult());
            }
            if (clusterOnly.Concat(auth.All).FirstOrDefault(Given) is { } clusterOption)
                throw new ConfigException($"{clusterOption.Name} needs --cluster host:port (it asks a running cluster about its evaluation jobs).");
            if (parse.GetValue(checkpoint) is not { } ckpt)
                throw new ConfigException("give --checkpoint <run directory | checkpoint directory | weights.safetensors>, or --cluster host:port to evaluate on a running cluster.");
            return Run(new EvalRequest
            {
                Checkpoint = ckpt,
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
            }, parse.GetValue(otlp));
        });
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
