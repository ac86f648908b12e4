using System.Globalization;
using System.Text;
using LiteVae.Actors.Protocol;

namespace LiteVae.Host.Terminal;

/// <summary>
/// The training progress line from the trainer's window reports (<see cref="TrainerProtocol.TrainerProgress"/>):
/// <c>step 1200/100000 (1.2%) | 55.9 img/s | loss 0.1234 ... | data wait 0.3% | ETA 3h12m</c>. The ETA is the remaining steps at the average wall-clock rate since
/// the first report of this process (so model building and warm-up before it do not count); none before a
/// second report. <see cref="ConsoleProgress"/> decides how the line reaches the screen.
/// </summary>
public sealed class TrainingProgressLine
{
    private readonly Func<TimeSpan> _clock;
    private (long Step, TimeSpan At)? _first;
    private (long Step, bool Paused)? _lastShown;

    /// <param name="startStep">The step training (re)starts from.</param>
    /// <param name="totalSteps">The step budget of the run.</param>
    /// <param name="clock">Monotonic time (tests pass a fake one).</param>
    public TrainingProgressLine(long startStep, long totalSteps, Func<TimeSpan>? clock = null)
    {
        StartStep = startStep;
        TotalSteps = Math.Max(1, totalSteps);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        _clock = clock ?? (() => sw.Elapsed);
    }

    public long StartStep { get; }
    public long TotalSteps { get; }

    /// <summary>The line for a report, or null when there is nothing new to show: no finished log window in
    /// this process yet (no losses: waiting for the first batches, or just restored), or the same step and
    /// state as the line before (the trainer repeats its last report while it waits, pauses or finishes).</summary>
    public string? Format(TrainerProtocol.TrainerProgress p)
    {
        if (p.Losses.Count == 0 || (p.Step, p.Paused) == _lastShown) return null;
        _lastShown = (p.Step, p.Paused);
        var now = _clock();
        TimeSpan? eta = null;
        if (_first is { } f && p.Step > f.Step && now > f.At)
            eta = TimeSpan.FromSeconds(Math.Max(0, TotalSteps - p.Step) * (now - f.At).TotalSeconds / (p.Step - f.Step));
        else if (_first is null && p.Step > StartStep)
            _first = (p.Step, now);
        string line = Line(p.Step, Math.Max(TotalSteps, p.Step), p.ImagesPerSecond, p.DataWaitFraction, eta,
            p.Losses.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        if (p.Samples.Skipped > 0) line += $" | {p.Samples.Skipped} bad skipped";
        return p.Paused ? line + " | paused" : line;
    }

    /// <summary>One line: <c>step 1200/100000 (1.2%) | 55.9 img/s | loss 0.1234 l1 0.0567 | data wait 0.3% | ETA 3h12m</c>.</summary>
    public static string Line(long step, long total, double imagesPerSecond, double dataWait, TimeSpan? eta,
        IEnumerable<KeyValuePair<string, double>> losses)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int width = total.ToString(ci).Length;
        sb.Append(ci, $"step {step.ToString(ci).PadLeft(width)}/{total} ({100.0 * step / total:0.0}%)");
        sb.Append(ci, $" | {imagesPerSecond:0.0} img/s");
        var terms = losses.ToList();
        if (terms.Count > 0)
        {
            sb.Append(" |");
            foreach (var (k, v) in terms)
                sb.Append(ci, $" {k} {Number(v)}");
        }
        sb.Append(ci, $" | data wait {100 * dataWait:0.0}%");
        if (eta is TimeSpan e)
            sb.Append(" | ETA ").Append(ConsoleProgress.Duration(e));
        return sb.ToString();
    }

    /// <summary>A loss value: four decimals in the usual range, scientific outside it.</summary>
    public static string Number(double v) =>
        double.IsNaN(v) || double.IsInfinity(v) ? v.ToString(CultureInfo.InvariantCulture)
        : Math.Abs(v) is >= 1e-3 and < 1e4 or 0 ? v.ToString("0.0000", CultureInfo.InvariantCulture)
        : v.ToString("0.00e+0", CultureInfo.InvariantCulture);
}
