using LiteVae.Model.Checkpoints;
using LiteVae.Model.Training;

namespace LiteVae.Actors.Training;

/// <summary>
/// The run's training curves in <c>tb/</c>, one point per log window at the global step: every loss
/// term the trainer reports (G and D, D's logits on real and fake once it is on), learning rates and
/// gradient norms, with the trainer's own img/s, data wait, step time, skipped steps and GPU memory.
/// Written by whoever trains a run's steps (a lone trainer, or rank 0 of a group), so a run has one
/// stream across resumes and re-formed groups: starting at a checkpoint's step, it first cuts the points
/// past that step out of the run's earlier curve files (they are trained again).
/// </summary>
internal sealed class TrainingCurves
{
    private const string Suffix = ".train";
    private readonly TensorBoardLog _log;
    private readonly int? _cudaIndex;

    public TrainingCurves(string runDir, string device, long startStep)
    {
        string tb = RunDirectory.TensorBoardOf(runDir);
        TensorBoardLog.TruncateAfter(tb, Suffix, startStep);
        _log = new TensorBoardLog(tb, Suffix);
        _cudaIndex = device.StartsWith("cuda", StringComparison.Ordinal)
            ? (device.Split(':') is [_, var i] ? int.Parse(i, System.Globalization.CultureInfo.InvariantCulture) : 0)
            : null;
    }

    public void Window(long step, IReadOnlyDictionary<string, double> losses, double imagesPerSecond, double dataWait,
        double stepSeconds, long skippedSteps)
    {
        var points = new List<KeyValuePair<string, double>>(losses)
        {
            new("train/images_per_second", imagesPerSecond),
            new("train/data_wait", dataWait),
            new("train/step_seconds", stepSeconds),
            new("train/skipped_steps", skippedSteps),
        };
        if (_cudaIndex is int index && GpuMemory.DeviceUsed(index) is long used)
            points.Add(new("train/gpu_memory_gib", used / (double)(1L << 30)));
        _log.Scalars(step, points);
    }
}
