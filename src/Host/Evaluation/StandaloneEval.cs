using LiteVae.Model;
using System.Diagnostics;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Config;
using LiteVae.Host.Config;
using LiteVae.Host.Inference;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Perceptual;
using static TorchSharp.torch;

namespace LiteVae.Host.Evaluation;

/// <summary>What `litevae eval` (without --cluster) was asked to do.</summary>
internal sealed record EvalRequest
{
    public required string Checkpoint { get; init; }
    public string? Model { get; init; }
    /// <summary>Shards, patterns or a folder; null takes the eval-data source of the checkpoint's config.</summary>
    public string? Data { get; init; }
    public int Resolution { get; init; } = 256;
    public int Batch { get; init; } = 16;
    public long? Limit { get; init; }
    public string? Json { get; init; }
    public string? WeightsDir { get; init; }
    public string Device { get; init; } = "auto";
    public string Precision { get; init; } = "fp32";
    public string Lpips { get; init; } = "vgg";
    public bool Rfid { get; init; } = true;
    public int GridImages { get; init; } = 8;
    public bool Ema { get; init; }
    public string? Label { get; init; }
    public int DecodeWorkers { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 8);
}

/// <summary>
/// The standalone evaluation: resolve the checkpoint and its config, load the model and the metric
/// networks, run the <see cref="EvalJob"/> with progress, print the table, and write the JSON, grids,
/// CSV (into &lt;run&gt;/eval/step-NNNNNNNN.* for a run's checkpoint, or beside --json) and, for a run,
/// TensorBoard scalars.
/// </summary>
internal static class StandaloneEval
{
    public static EvalReport Run(EvalRequest request, TextWriter output, ProgressPrinter? progress, CancellationToken ct)
    {
        if (request.Batch < 1) throw new ArgumentException($"--batch {request.Batch}: must be at least 1.");
        if (request.GridImages < 0 || request.GridImages > 64) throw new ArgumentException($"--grid {request.GridImages}: must be between 0 and 64.");
        var source = CheckpointSource.Resolve(request.Checkpoint, request.Model, request.Ema);
        var device = DeviceChoice.Parse(request.Device);
        var dtype = DeviceChoice.ParsePrecision(request.Precision);
        var lpipsChoice = MetricNetworks.ParseLpips(request.Lpips);
        var data = DataFor(request, source);

        using var model = source.Load(device, dtype);
        var files = request.WeightsDir is { } dir ? new WeightFiles(dir, "--weights-dir") : WeightsFolder.Resolve(null);
        using var networks = MetricNetworks.Load(files, lpipsChoice, device, rfidOff: request.Rfid ? null : "rFID: switched off (--no-rfid).");
        var reconstructor = new AutoencoderReconstructor(model, device);
        var options = new EvalJobOptions { Data = data, Limit = request.Limit, GridImages = request.GridImages, WorstImages = request.GridImages };

        EvalResults results;
        var clock = Stopwatch.StartNew();
        using var span = LiteVaeTelemetry.Default.Eval.StartActivity("eval.job");
        span?.SetTag(TelemetryTags.Checkpoint, source.Description);
        span?.SetTag(TelemetryTags.Device, device.ToString());
        if (source.Step is long spanStep) span?.SetTag(TelemetryTags.Step, spanStep);
        using (var job = EvalJob.Start(reconstructor, networks, options))
        {
            try
            {
                job.Run(ct, progress is null ? null : progress.Report);
            }
            finally
            {
                progress?.Done();
            }
            results = job.Finish(computeFid: true);
        }
        span?.SetTag(TelemetryTags.Samples, results.Data.Images);
        span?.SetTag(TelemetryTags.BadSamples, results.Data.BadSamples);
        LiteVaeTelemetry.Default.EvalDuration.Record(clock.Elapsed.TotalSeconds, new KeyValuePair<string, object?>(TelemetryTags.Device, device.ToString()));

        var checkpoint = new ReportCheckpoint(source.Description, source.WeightsPath, source.Step, source.RunDir, source.ConfigSource);
        long parameters = model.parameters().Sum(p => p.numel());
        var modelInfo = new ReportModel(model.Config.EmbedDim, parameters, request.Precision.ToLowerInvariant(), device.ToString(), request.Batch,
            ModelSectionFile(source).Section("model").Render().Replace("\r\n", "\n"));
        var report = EvalReportWriter.Build(results, request.Label ?? source.Label, checkpoint, modelInfo);

        string? jsonPath = request.Json;
        if (jsonPath is null && source.RunDir is not null && source.Step is long step)
            jsonPath = Path.Combine(source.RunDir, "eval", StepName(step) + (request.Ema ? "-ema" : "") + ".json");
        if (jsonPath is not null)
            report = EvalReportWriter.WriteFiles(report, results, jsonPath);
        if (source.RunDir is not null && source.Step is long s)
            EvalReportWriter.WriteTensorBoard(Path.Combine(source.RunDir, "tb"), s, report, jsonPath);
        output.Write(EvalTable.Render(report, results.WorstFirst, jsonPath));
        return report;
    }

    public static string StepName(long step) => $"step-{step:D8}";

    /// <summary>The config file, or the JSON the weights carry read as one (JSON is HOCON).</summary>
    private static HoconFile ModelSectionFile(CheckpointSource source) =>
        source.ConfigPath is { } path ? HoconFile.Load(path)
            : HoconFile.Parse("model = " + Model.Checkpoints.Safetensors.ReadHeader(source.WeightsPath).Metadata[Model.Configs.ModelConfigJson.MetadataKey], source.ConfigSource);

    /// <summary>The evaluation data: --data, else the checkpoint config's eval-data source; always the eval transform at --resolution.</summary>
    private static DataConfig DataFor(EvalRequest request, CheckpointSource source)
    {
        IReadOnlyList<string> sources;
        if (request.Data is { } d)
        {
            sources = [d];
        }
        else
        {
            if (source.ConfigPath is null)
                throw new ArgumentException($"give --data <shards or folder>: {source.WeightsPath} carries its model config but no eval-data section to take them from.");
            var file = HoconFile.Load(source.ConfigPath);
            if (!file.Has("eval-data"))
                throw new ArgumentException($"give --data <shards or folder>: the config {source.ConfigPath} has no eval-data section to take them from.");
            sources = DataConfigBinder.Bind(file, "eval-data").Source;
        }
        var config = new DataConfig
        {
            Source = sources,
            Resolution = request.Resolution,
            BatchSize = request.Batch,
            DecodeWorkers = request.DecodeWorkers,
        };
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--resolution/--batch: {e.Message}");
        }
        return config;
    }
}
