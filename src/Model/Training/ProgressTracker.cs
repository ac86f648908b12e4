using System.Globalization;
using System.Text;

namespace LiteVae.Model.Training;

/// <summary>What the progress line shows after a log window.</summary>
public sealed record ProgressReport(
    long Step, long TotalSteps, double ImagesPerSecond, double SecondsPerStep, double DataWaitFraction,
    TimeSpan? Eta, IReadOnlyList<KeyValuePair<string, double>> Losses);

/// <summary>
/// Throughput and ETA from log windows. Timing is per window, not per step: inside a window the host
/// does not wait for the GPU, so only the window's wall time (which ends with the one sync of the
/// window) is an honest measure. Speed is smoothed across windows (exponential, weight
/// <see cref="Smoothing"/> on the newest) so one slow window (a checkpoint, an eval) does not swing
/// the ETA; the first window after a start is kept out of the average when later ones exist,
/// because it contains warm-up (allocator growth, cuDNN autotuning).
/// </summary>
public sealed class ProgressTracker
{
    private double? _secondsPerStep;
    private int _windows;

    public ProgressTracker(long totalSteps, int imagesPerStep, double smoothing = 0.3)
    {
        if (totalSteps < 1) throw new ArgumentException("total steps must be at least 1.");
        if (imagesPerStep < 1) throw new ArgumentException("images per step must be at least 1.");
        if (smoothing is <= 0 or > 1) throw new ArgumentException("smoothing must be in (0, 1].");
        TotalSteps = totalSteps;
        ImagesPerStep = imagesPerStep;
        Smoothing = smoothing;
    }

    public long TotalSteps { get; }
    public int ImagesPerStep { get; }
    public double Smoothing { get; }

    /// <summary>Records a window that ended at <paramref name="step"/> (completed steps).</summary>
    public ProgressReport Window(long step, long stepsInWindow, double wallSeconds, double dataWaitSeconds,
        IReadOnlyList<KeyValuePair<string, double>> losses)
    {
        if (stepsInWindow < 1 || wallSeconds <= 0)
            throw new ArgumentException("a window needs at least one step and a positive duration.");
        double perStep = wallSeconds / stepsInWindow;
        _windows++;
        _secondsPerStep = _windows switch
        {
            1 => perStep,
            2 => perStep, // drop the warm-up window
            _ => Smoothing * perStep + (1 - Smoothing) * _secondsPerStep!.Value,
        };
        long remaining = Math.Max(0, TotalSteps - step);
        return new ProgressReport(step, TotalSteps, ImagesPerStep / perStep, perStep,
            Math.Clamp(dataWaitSeconds / wallSeconds, 0, 1), TimeSpan.FromSeconds(remaining * _secondsPerStep.Value), losses);
    }

    /// <summary>One line: <c>step 1200/100000 (1.2%) | 55.9 img/s | loss 0.1234 l1 0.0567 | data wait 0.3% | ETA 3h12m</c>.</summary>
    public static string Format(ProgressReport r)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int width = r.TotalSteps.ToString(ci).Length;
        sb.Append(ci, $"step {r.Step.ToString(ci).PadLeft(width)}/{r.TotalSteps} ({100.0 * r.Step / r.TotalSteps:0.0}%)");
        sb.Append(ci, $" | {r.ImagesPerSecond:0.0} img/s");
        if (r.Losses.Count > 0)
        {
            sb.Append(" |");
            foreach (var (k, v) in r.Losses)
                sb.Append(ci, $" {k} {FormatNumber(v)}");
        }
        sb.Append(ci, $" | data wait {100 * r.DataWaitFraction:0.0}%");
        if (r.Eta is TimeSpan eta)
            sb.Append(" | ETA ").Append(FormatDuration(eta));
        return sb.ToString();
    }

    public static string FormatNumber(double v) =>
        double.IsNaN(v) || double.IsInfinity(v) ? v.ToString(CultureInfo.InvariantCulture)
        : Math.Abs(v) is >= 1e-3 and < 1e4 or 0 ? v.ToString("0.0000", CultureInfo.InvariantCulture)
        : v.ToString("0.00e+0", CultureInfo.InvariantCulture);

    public static string FormatDuration(TimeSpan t)
    {
        if (t.TotalSeconds < 60) return $"{(int)Math.Ceiling(t.TotalSeconds)}s";
        if (t.TotalMinutes < 60) return $"{(int)t.TotalMinutes}m{t.Seconds:00}s";
        if (t.TotalHours < 48) return $"{(int)t.TotalHours}h{t.Minutes:00}m";
        return $"{(int)t.TotalDays}d{t.Hours:00}h";
    }
}
