namespace LiteVae.Model.Evaluation;

/// <summary>
/// How far an evaluation is: images done, the expected total (unknown: null), elapsed time, rate and time left.
/// </summary>
public sealed record EvalProgress(long Images, long? Total, TimeSpan Elapsed)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Images / Elapsed.TotalSeconds : 0;

    /// <summary>Time left at the rate so far; null while the total or the rate is unknown.</summary>
    public TimeSpan? Remaining =>
        Total is long t && Images > 0 && ImagesPerSecond > 0
            ? TimeSpan.FromSeconds(Math.Max(0, t - Images) / ImagesPerSecond)
            : null;

    public string Describe()
    {
        string count = Total is long t
            ? $"{Images}/{t} images ({100.0 * Images / Math.Max(1, t):0}%)"
            : $"{Images} images";
        string eta = Remaining is { } r ? $", ETA {Format(r)}" : "";
        return FormattableString.Invariant($"eval {count}, {ImagesPerSecond:0.0} img/s, {Format(Elapsed)} elapsed{eta}");
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:00}s"
        : FormattableString.Invariant($"{t.TotalSeconds:0.0}s");
}

