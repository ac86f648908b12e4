using LiteVae.Model.Metrics;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Host.Config;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Perceptual;
using static TorchSharp.torch;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// An eval job of the Evaluator: the <see cref="RunEval"/> of `litevae eval` on a checkpoint of the run,
/// with the checkpoint's own config (never the flags) and weights (EMA when eval.use-ema), on the held-out
/// images (or --data); reports go to the run's eval/ folder and TensorBoard. One batch per Step.
/// </summary>
internal sealed class CheckpointEvaluation : IEvalJob
{
    private readonly RunEval _eval;
    private readonly LiteAutoencoder _model;
    private readonly long _step;
    private readonly int _debugBatchDelayMs;
    private EvalOutcome? _outcome;

    public CheckpointEvaluation(EvalProtocol.RunEvaluation request, WeightFiles weights, int debugBatchDelayMs = 0)
    {
        _debugBatchDelayMs = debugBatchDelayMs;
        var checkpoint = CheckpointDir.Open(request.CheckpointPath);
        var c = ExperimentConfigBinder.Bind(checkpoint.ConfigText, Path.Combine(request.CheckpointPath, CheckpointStore.ConfigFile));
        var source = CheckpointSource.Resolve(request.CheckpointPath, null, c.Eval.UseEma);
        _step = checkpoint.State.Step;
        var device = DeviceChoice.Parse(c.Run.Device);
        _model = source.Load(device, ScalarType.Float32);
        try
        {
            var reported = new ReportCheckpoint(source.Description, source.WeightsPath, _step, request.RunDir, source.ConfigSource);
            _eval = RunEval.Start(c, checkpoint.ConfigText, new AutoencoderReconstructor(_model, device), request.RunDir, _step, reported,
                _model.parameters().Sum(p => p.numel()), request.Data, weights);
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    public bool Step()
    {
        if (_debugBatchDelayMs > 0) Thread.Sleep(_debugBatchDelayMs);
        return _eval.Step();
    }

    public EvalOutcome Finish()
    {
        if (_outcome is not null) return _outcome;
        var (report, json) = _eval.Finish();
        var metrics = EvalReport.MetricOrder.Where(report.Metrics.ContainsKey)
            .Select(name => new MetricValue(name, report.Metrics[name].Value, report.Metrics[name].Unavailable)).ToList();
        Console.WriteLine(RunEval.Describe(_step, report, json));
        return _outcome = new EvalOutcome(metrics, json, checked((int)report.Data.Images));
    }

    public void Dispose()
    {
        _eval.Dispose();
        _model.Dispose();
    }
}
