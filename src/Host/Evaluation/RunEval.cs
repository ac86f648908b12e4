using LiteVae.Actors;
using System.Globalization;
using LiteVae.Host.Config;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Perceptual;
using static TorchSharp.torch;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// The held-out evaluation of a training run at one step: the <see cref="EvalJob"/> of `litevae eval` on the
/// experiment's eval-data (its resolution and batch size, the first eval.images images), reports written to
/// &lt;run&gt;/eval/step-NNNNNNNN.{json,png,csv} (plus -worst.png) and eval/* scalars in &lt;run&gt;/tb. The train
/// process runs it on the initial weights (step 0); the Evaluator actor runs it on each new checkpoint and
/// for `litevae eval --cluster`. Advances one batch per <see cref="Step"/>; one thread drives it.
/// </summary>
internal sealed class RunEval : IDisposable
{
    private readonly EvalJob _job;
    private readonly MetricNetworks _networks;
    private readonly ExperimentConfig _config;
    private readonly string _runDir;
    private readonly long _step;
    private readonly string _label;
    private readonly ReportCheckpoint _checkpoint;
    private readonly ReportModel _model;

    private RunEval(EvalJob job, MetricNetworks networks, ExperimentConfig config, string runDir, long step, string label,
        ReportCheckpoint checkpoint, ReportModel model)
    {
        (_job, _networks, _config, _runDir, _step, _label, _checkpoint, _model) = (job, networks, config, runDir, step, label, checkpoint, model);
    }

    /// <summary>Whether the experiment asks for held-out evaluations (an eval-data section and eval.images &gt; 0).</summary>
    public static bool Enabled(ExperimentConfig c) => c.EvalData is not null && c.Eval.Images > 0;

    /// <param name="dataOverride">Evaluation images instead of the experiment's eval-data source (`litevae eval --cluster --data`); then every image is evaluated.</param>
    /// <param name="weights">Where the LPIPS/FID weight files are looked for.</param>
    /// <param name="experimentText">The experiment config as written (its model section goes into the report).</param>
    public static RunEval Start(ExperimentConfig config, string experimentText, IReconstructor reconstructor, string runDir, long step,
        ReportCheckpoint checkpoint, long parameters, string? dataOverride, WeightFiles weights)
    {
        var evalData = config.EvalData;
        if (dataOverride is null && (evalData is null || config.Eval.Images == 0))
            throw new ConfigException("the experiment has no held-out evaluation (no eval-data section, or eval.images = 0); pass --data <shards>.");
        var data = (evalData ?? config.Data with { Source = [] }) with { Source = dataOverride is null ? evalData!.Source : [dataOverride] };
        // Training crops are random; evaluation always uses the eval transform at the eval resolution.
        long? limit = dataOverride is null ? config.Eval.Images : null;
        var networks = MetricNetworks.Load(weights, MetricNetworks.ParseLpips(config.Eval.Lpips, "eval.lpips"),
            reconstructor.Device, lpipsOff: "LPIPS: switched off (eval.lpips = none).",
            rfidOff: config.Eval.Rfid ? null : "rFID: off for training evaluations (eval.rfid = false); run `litevae eval` for it.");
        try
        {
            var job = EvalJob.Start(reconstructor, networks, new EvalJobOptions
            {
                Data = data,
                Limit = limit,
                GridImages = config.Eval.GridImages,
                WorstImages = config.Eval.GridImages,
            });
            var model = new ReportModel(config.Model.EmbedDim, parameters, "fp32", reconstructor.Device.ToString(), data.BatchSize,
                ModelSection(experimentText));
            string label = $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDir)))}@{step}" + (config.Eval.UseEma ? " (ema)" : "");
            return new RunEval(job, networks, config, runDir, step, label, checkpoint, model);
        }
        catch
        {
            networks.Dispose();
            throw;
        }
    }

    public long Count => _job.Count;

    /// <summary>Evaluates the next batch; false when the data (or eval.images) is exhausted.</summary>
    public bool Step(CancellationToken ct = default) => _job.Step(ct);

    /// <summary>Aggregates, then writes the JSON, grids, CSV and TensorBoard scalars; returns the report (with the JSON's path).</summary>
    public (EvalReport Report, string JsonPath) Finish()
    {
        var results = _job.Finish(computeFid: _config.Eval.Rfid);
        var report = EvalReportWriter.Build(results, _label, _checkpoint, _model);
        string json = Path.Combine(_runDir, "eval", StandaloneEval.StepName(_step) + ".json");
        report = EvalReportWriter.WriteFiles(report, results, json);
        EvalReportWriter.WriteTensorBoard(Path.Combine(_runDir, "tb"), _step, report, json);
        return (report, json);
    }

    /// <summary>Runs to the end and writes the reports.</summary>
    public (EvalReport Report, string JsonPath) Run(CancellationToken ct = default)
    {
        while (Step(ct)) { }
        return Finish();
    }

    /// <summary>One line for the console: "eval step 200: held-out PSNR 14.80 dB, SSIM 0.4123, … over 10 images; grid …".</summary>
    public static string Describe(long step, EvalReport report, string jsonPath)
    {
        var inv = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        foreach (var name in new[] { "psnr", "ssim", "lpips", "rfid" })
        {
            if (report.Metric(name) is not { Value: double v }) continue;
            parts.Add(name switch
            {
                "psnr" => string.Create(inv, $"held-out PSNR {v:0.00} dB"),
                "ssim" => string.Create(inv, $"SSIM {v:0.0000}"),
                "lpips" => string.Create(inv, $"LPIPS {v:0.0000}"),
                _ => string.Create(inv, $"rFID {v:0.00}"),
            });
        }
        string grid = report.Files?.Grid is { } g ? "; grid " + Path.Combine(Path.GetDirectoryName(jsonPath)!, g) : "";
        return $"eval step {step}: {string.Join(", ", parts)} over {report.Data.Images} images{grid}";
    }

    /// <summary>The model { } section of an experiment text, rendered for the report.</summary>
    public static string ModelSection(string experimentText)
    {
        var file = HoconFile.Parse(experimentText, "experiment");
        return file.Has("model") ? file.Section("model").Render().Replace("\r\n", "\n") : "";
    }

    public void Dispose()
    {
        _job.Dispose();
        _networks.Dispose();
    }
}
