using LiteVae.Model.Evaluation;

namespace LiteVae.Host.Evaluation;

/// <summary>
/// Progress of a long evaluation on stderr: rewritten in place on a terminal (at most twice a
/// second), a plain line every 30 seconds when stderr goes to a file or pipe, so logs stay short.
/// </summary>
internal sealed class ProgressPrinter(TextWriter writer, bool interactive)
{
    private DateTime _last = DateTime.MinValue;
    private bool _wroteInPlace;

    public static ProgressPrinter ForConsole() => new(Console.Error, !Console.IsErrorRedirected);

    public void Report(EvalProgress progress)
    {
        var now = DateTime.UtcNow;
        var interval = interactive ? TimeSpan.FromSeconds(0.5) : TimeSpan.FromSeconds(30);
        if (now - _last < interval) return;
        if (_last == DateTime.MinValue && !interactive)
        {
            _last = now; // the first plain line after 30 s, not at the first batch
            return;
        }
        _last = now;
        if (interactive)
        {
            writer.Write("\r" + progress.Describe().PadRight(78));
            _wroteInPlace = true;
        }
        else
        {
            writer.WriteLine(progress.Describe());
        }
    }

    /// <summary>Ends an in-place line so the next output starts on a fresh line.</summary>
    public void Done()
    {
        if (_wroteInPlace) writer.WriteLine();
        _wroteInPlace = false;
    }
}
