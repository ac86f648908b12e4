using System.Diagnostics;
using System.Globalization;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using LiteVae.Host.Config;
using LiteVae.Host.Inference;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Host.Training;

/// <summary>What `litevae train` was asked to do.</summary>
internal sealed record TrainRequest(
    string? Config, IReadOnlyList<string> Overrides, string? Resume, string? InitFrom, string? Device,
    long? MaxSteps, string? RunDir, string RunsParent, string? Weights, int DebugCheckpointFileDelayMs);

/// <summary>
/// The plain training loop: data pipeline → <see cref="LiteVaeTrainer.TrainStep"/> per batch, a log
/// window every trainer.log-every steps (the one GPU sync of the window: progress line, TensorBoard),
/// and at every checkpoint interval a held-out evaluation, a snapshot on this thread and an
/// asynchronous atomic write. Everything runs on the calling thread except the checkpoint writer and
/// the data pipeline's own stages; the actor version (DeviceTrainer) will call the same trainer API.
/// </summary>
internal sealed class TrainRun
{
    public static int Execute(TrainRequest request)
    {
        if (request.Resume is not null && (request.Config is not null || request.InitFrom is not null))
            throw new ArgumentException("--resume continues a run with its own config.conf: do not combine it with --config or --init-from.");
        if (request.Resume is null && request.Config is null)
            throw new ArgumentException("give --config <file> for a new run, or --resume <run directory>.");

        var overrides = request.Overrides.ToList();
        if (request.MaxSteps is long m) overrides.Add($"trainer.max-steps={m}");
        if (request.Device is string d) overrides.Add($"trainer.device=\"{d}\"");

        RunDirectory? resumeRun = request.Resume is null ? null : RunDirectory.Open(request.Resume);
        if (resumeRun is not null && CheckpointStore.List(resumeRun.Checkpoints).Count == 0)
            throw new InvalidDataException($"{request.Resume}: the run has no complete checkpoint yet, so there is nothing to resume; " +
                $"start it again with --config {resumeRun.ConfigPath} (and a new --run-dir).");
        CheckpointDir? checkpoint = resumeRun is null ? null : CheckpointDir.Open(resumeRun.Root);
        string configPath = resumeRun?.ConfigPath ?? request.Config!;
        var config = ExperimentConfigBinder.Load(configPath, overrides);
        var device = DeviceChoice.Parse(config.Run.Device);
        return new TrainRun(config, device, request, resumeRun, checkpoint).Train();
    }

    private readonly ExperimentConfig _config;
    private readonly Device _device;
    private readonly TrainRequest _request;
    private readonly RunDirectory? _resumeRun;
    private readonly CheckpointDir? _checkpoint;
    private readonly ProgressDisplay _display = ProgressDisplay.ForConsole();
    private volatile bool _stopRequested;

    private TrainRun(ExperimentConfig config, Device device, TrainRequest request, RunDirectory? resumeRun, CheckpointDir? checkpoint)
    {
        _config = config;
        _device = device;
        _request = request;
        _resumeRun = resumeRun;
        _checkpoint = checkpoint;
    }

    private int Train()
    {
        var c = _config;
        if (c.Run.CpuThreads > 0)
            set_num_threads(c.Run.CpuThreads);
        if (_device.type == DeviceType.CUDA)
            NativeTorchSettings.TrySetCudnnBenchmark(true); // fixed shapes: let cuDNN pick the fastest kernels

        // Build on the CPU in fp32 (init seeded), load weights, then the trainer moves and flattens.
        manual_seed(c.Trainer.Seed);
        var autoencoder = new LiteAutoencoder(c.Model);
        var discriminator = DiscriminatorFactory.Create(c.Discriminator);
        Lpips? lpips = null;
        if (c.Perceptual != PerceptualNet.None && c.Loss.PerceptualWeight > 0)
        {
            var loaded = PretrainedNetworks.LoadLpips(WeightsFolder.Resolve(_request.Weights), c.Perceptual == PerceptualNet.Vgg ? LpipsNet.Vgg : LpipsNet.Alex);
            lpips = loaded.Value;
            if (!loaded.IsAvailable)
                _display.Message($"note: the LPIPS term is OFF for this run: {loaded.Reason}");
        }

        using var trainer = new LiteVaeTrainer(autoencoder, discriminator, lpips, c.Loss, c.Trainer, _device);
        DataPosition? startPosition = null;
        if (_checkpoint is not null)
        {
            trainer.Restore(_checkpoint);
            if (_checkpoint.State.DataPosition is string p)
                startPosition = DataPosition.FromJson(p);
            _display.Message($"resumed {_checkpoint.Path} at step {trainer.Step}" + (startPosition is null ? "" : $", data {startPosition}"));
        }
        string? initFrom = _request.InitFrom ?? c.Run.InitFrom;
        if (_checkpoint is null && initFrom is not null)
        {
            var report = trainer.InitFrom(initFrom);
            _display.Message($"initialised the autoencoder from {initFrom}: {report.Loaded.Count} tensors" +
                (report.Unexpected.Count > 0 ? $" ({report.Unexpected.Count} other tensors ignored, e.g. {report.Unexpected[0]})" : "") +
                "; optimizer and step start fresh.");
        }

        var run = _resumeRun ?? (_request.RunDir is not null
            ? RunDirectory.CreateAt(_request.RunDir, c.ResolvedText)
            : RunDirectory.Create(_request.RunsParent, c.Name, c.Trainer.Precision.Name(), DateTime.Now, c.ResolvedText));
        _display.Message($"run {run.Root}: {c.Name}, {trainer.GeneratorParameterCount:N0} autoencoder parameters, " +
            $"{(trainer.HasDiscriminator ? c.Discriminator.Type : "no")} discriminator, {c.Trainer.Precision.Name()} on {_device}, " +
            $"batch {c.Data.BatchSize} at {c.Data.Resolution}², {c.Run.MaxSteps} steps");

        var eval = HeldOutEval.Load(c);
        var tb = new TensorBoardLog(run.Tb);
        var versions = new Dictionary<string, string>
        {
            ["litevae"] = typeof(TrainRun).Assembly.GetName().Version?.ToString() ?? "?",
            ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
            ["dotnet"] = Environment.Version.ToString(),
        };
        Action<string>? afterFile = _request.DebugCheckpointFileDelayMs > 0 ? _ => Thread.Sleep(_request.DebugCheckpointFileDelayMs) : null;
        using var writer = new AsyncCheckpointWriter(run.Checkpoints, new RetentionPolicy(c.Checkpoint.KeepLast, c.Checkpoint.KeepBest), afterFile);
        writer.Written += dir => _display.Message($"checkpoint {dir}");

        EvalResult? first = null, last = null;
        if (eval is not null && trainer.Step == 0)
        {
            first = Evaluate(eval, trainer, run, tb);
        }

        Console.CancelKeyPress += OnCancel;
        var progress = new ProgressTracker(c.Run.MaxSteps, c.Data.BatchSize);
        var pipeline = DataPipeline.Start(c.Data.CreatePipelineOptions(DataUse.Train), startPosition);
        DataPosition? position = startPosition;
        try
        {
            var window = Stopwatch.StartNew();
            double dataWait = 0;
            long windowStart = trainer.Step;
            while (trainer.Step < c.Run.MaxSteps && !_stopRequested)
            {
                var waitClock = Stopwatch.StartNew();
                var batch = NextBatch(pipeline);
                dataWait += waitClock.Elapsed.TotalSeconds;
                using (batch)
                {
                    if (batch.Count % c.Trainer.MicroBatches != 0)
                    {
                        _display.Message($"note: skipped a batch of {batch.Count} images (not divisible into {c.Trainer.MicroBatches} micro-batches).");
                        position = batch.PositionAfter;
                        continue;
                    }
                    trainer.TrainStep(batch.Pixels.Span, [batch.Count, 3, batch.Height, batch.Width]);
                    position = batch.PositionAfter;
                }

                long step = trainer.Step;
                bool checkpointNow = step % c.Checkpoint.EverySteps == 0 || step == c.Run.MaxSteps;
                if (step % c.Run.LogEvery == 0 || checkpointNow)
                {
                    var w = trainer.ReadWindow();
                    var report = progress.Window(step, step - windowStart, window.Elapsed.TotalSeconds, dataWait,
                        w.Means.Where(kv => kv.Key is "g/total" or "g/l1" or "g/lpips" or "g/kl" or "d/d_loss").Select(Short).ToList());
                    _display.Progress(ProgressTracker.Format(report));
                    foreach (long s in w.SkippedSteps)
                        _display.Message($"warning: step {s} had NaN/Inf gradients; its update was skipped ({w.TotalSkipped} so far).");
                    tb.Scalars(step, w.Means.Select(kv => new KeyValuePair<string, double>("train/" + kv.Key, kv.Value))
                        .Append(new("perf/images_per_second", report.ImagesPerSecond))
                        .Append(new("perf/data_wait_fraction", report.DataWaitFraction)));
                    window.Restart();
                    dataWait = 0;
                    windowStart = step;
                }
                if (checkpointNow)
                {
                    last = Checkpoint(trainer, writer, eval, run, tb, position, versions);
                    window.Restart(); // evaluation time is not training time
                }
            }
            if (_stopRequested && trainer.Step % c.Checkpoint.EverySteps != 0)
            {
                _display.Message($"stopping at step {trainer.Step}: writing a checkpoint first.");
                last = Checkpoint(trainer, writer, eval, run, tb, position, versions);
            }
            writer.WaitIdle();
        }
        finally
        {
            Console.CancelKeyPress -= OnCancel;
            pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        _display.Message($"done: {trainer.Step} steps; checkpoints in {run.Checkpoints}" +
            (first is not null && last is not null
                ? string.Create(CultureInfo.InvariantCulture, $"; held-out PSNR {first.MeanPsnr:0.00} dB at step 0 → {last.MeanPsnr:0.00} dB at step {last.Step}")
                : ""));
        return 0;
    }

    private static KeyValuePair<string, double> Short(KeyValuePair<string, double> kv) =>
        new(kv.Key switch { "g/total" => "loss", "d/d_loss" => "d", _ => kv.Key[2..] }, kv.Value);

    private EvalResult? Checkpoint(LiteVaeTrainer trainer, AsyncCheckpointWriter writer, HeldOutEval? eval, RunDirectory run,
        TensorBoardLog tb, DataPosition? position, IReadOnlyDictionary<string, string> versions)
    {
        EvalResult? result = eval is null ? null : Evaluate(eval, trainer, run, tb);
        var metric = result is null ? null : new CheckpointMetric("psnr", result.MeanPsnr, HigherIsBetter: true);
        writer.Submit(trainer.Snapshot(_config.ResolvedText, position?.ToJson(), metric, versions));
        return result;
    }

    private EvalResult Evaluate(HeldOutEval eval, LiteVaeTrainer trainer, RunDirectory run, TensorBoardLog tb)
    {
        var r = eval.Run(trainer, run, trainer.Step);
        _display.Message(HeldOutEval.Describe(r));
        tb.Scalars(r.Step, [new("eval/psnr", r.MeanPsnr)]);
        try
        {
            tb.ImageFile("eval/reconstructions", r.GridPath, r.Step);
        }
        catch (Exception e) when (e is TypeLoadException or MissingMethodException or DllNotFoundException or EntryPointNotFoundException)
        {
            _display.Message($"note: TensorBoard image not written ({e.GetType().Name}); the grid is in {r.GridPath}.");
        }
        return r;
    }

    private static Batch NextBatch(DataPipeline pipeline)
    {
        var reader = pipeline.Batches;
        while (true)
        {
            if (reader.TryRead(out var batch))
                return batch;
            // Block this thread (the training thread owns its dispose scopes; no await hops).
            if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                pipeline.Completion.GetAwaiter().GetResult();
                throw new InvalidOperationException("the training data pipeline ended unexpectedly.");
            }
        }
    }

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        if (_stopRequested) return; // a second Ctrl+C terminates
        e.Cancel = true;
        _stopRequested = true;
        _display.Message("Ctrl+C: finishing this step and writing a checkpoint (press again to abort).");
    }
}
