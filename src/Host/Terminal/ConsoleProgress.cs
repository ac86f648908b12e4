namespace LiteVae.Host.Terminal;

/// <summary>
/// Shows a long job's progress line on a terminal. On a TTY the line is redrawn in place (carriage
/// return + erase to end of line), at most every <see cref="RedrawInterval"/>; when the output is a file
/// or a pipe (CI logs, <c>nohup</c>), it prints plain lines, one per <see cref="LogInterval"/>, so logs
/// stay readable. The caller formats the line (TrainingProgressLine does it for training); this class only
/// decides when and how it reaches the screen. Thread-safe: the trainer, data and eval actors report
/// from their own threads.
/// </summary>
public sealed class ConsoleProgress : IDisposable
{
    private const string EraseToEnd = "\u001b[K";

    private readonly TextWriter _out;
    private readonly Func<TimeSpan> _clock;
    private readonly object _gate = new();
    private TimeSpan? _lastShown;
    private string? _pending;
    private bool _lineOpen;
    private string? _current;   // the line on screen now (interactive mode), redrawn after a message

    /// <param name="output">Where lines go (stdout).</param>
    /// <param name="interactive">True when <paramref name="output"/> is a terminal that understands
    /// carriage return and ANSI erase (the Host decides: not redirected and TERM is not <c>dumb</c>).</param>
    /// <param name="logInterval">Plain mode: the time between two printed lines.</param>
    /// <param name="clock">Monotonic time (tests pass a fake one).</param>
    public ConsoleProgress(TextWriter output, bool interactive, TimeSpan? logInterval = null, Func<TimeSpan>? clock = null)
    {
        _out = output;
        Interactive = interactive;
        LogInterval = logInterval ?? TimeSpan.FromSeconds(30);
        if (LogInterval < TimeSpan.Zero) throw new ArgumentException("the progress log interval must not be negative.");
        RedrawInterval = TimeSpan.FromMilliseconds(250);
        var started = System.Diagnostics.Stopwatch.StartNew();
        _clock = clock ?? (() => started.Elapsed);
    }

    public bool Interactive { get; }
    public TimeSpan LogInterval { get; }
    public TimeSpan RedrawInterval { get; }

    /// <summary>
    /// Offers the newest progress line. It is shown now if the interval since the last one has passed
    /// (or <paramref name="force"/>), otherwise kept so that <see cref="Complete"/> can show the last state.
    /// </summary>
    public void Report(string line, bool force = false)
    {
        lock (_gate)
        {
            var now = _clock();
            var interval = Interactive ? RedrawInterval : LogInterval;
            if (!force && _lastShown is { } last && now - last < interval)
            {
                _pending = line;
                return;
            }
            Show(line);
            _lastShown = now;
            _pending = null;
        }
    }

    /// <summary>Prints a message (a warning, a checkpoint notice) above the progress line, which is
    /// then redrawn, so the two never overwrite each other.</summary>
    public void Message(string message)
    {
        lock (_gate)
        {
            if (_lineOpen)
            {
                _out.Write('\r');
                _out.Write(EraseToEnd);
            }
            _out.WriteLine(message);
            if (_lineOpen && _current is not null)
                _out.Write(_current);
            _out.Flush();
        }
    }

    /// <summary>
    /// A writer whose complete lines go through <see cref="Message"/>: installed as Console.Out while the
    /// progress line is live, it keeps lines printed by other code (an evaluation's report, a log line) from
    /// landing in the middle of the progress line. A partial line waits for its newline.
    /// </summary>
    public TextWriter LinesAbove() => TextWriter.Synchronized(new AboveWriter(this));

    private sealed class AboveWriter(ConsoleProgress progress) : TextWriter
    {
        private readonly System.Text.StringBuilder _line = new();

        public override System.Text.Encoding Encoding => progress._out.Encoding;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                progress.Message(_line.ToString().TrimEnd('\r'));
                _line.Clear();
            }
            else
            {
                _line.Append(value);
            }
        }

        public override void Flush()
        {
            if (_line.Length == 0) return;
            progress.Message(_line.ToString());
            _line.Clear();
        }
    }

    /// <summary>Shows the last line offered (if it was held back) and ends the line.</summary>
    public void Complete()
    {
        lock (_gate)
        {
            if (_pending is not null) Show(_pending);
            _pending = null;
            if (_lineOpen) _out.WriteLine();
            _lineOpen = false;
            _current = null;
            _out.Flush();
        }
    }

    public void Dispose() => Complete();

    /// <summary>Time left at the average rate so far: <c>1h05m</c>, <c>42s</c>; <c>?</c> before any progress.</summary>
    public static string Eta(long done, long total, TimeSpan elapsed)
    {
        if (done <= 0 || elapsed <= TimeSpan.Zero) return "?";
        double seconds = Math.Max(0, total - done) * elapsed.TotalSeconds / done;
        return Duration(TimeSpan.FromSeconds(seconds));
    }

    /// <summary>A short duration: <c>42s</c>, <c>3m07s</c>, <c>5h02m</c>, <c>3d04h</c>.</summary>
    public static string Duration(TimeSpan t)
    {
        if (t.TotalSeconds < 60) return $"{(int)Math.Ceiling(t.TotalSeconds)}s";
        if (t.TotalMinutes < 60) return $"{(int)t.TotalMinutes}m{t.Seconds:00}s";
        if (t.TotalHours < 48) return $"{(int)t.TotalHours}h{t.Minutes:00}m";
        return $"{(int)t.TotalDays}d{t.Hours:00}h";
    }

    private void Show(string line)
    {
        if (Interactive)
        {
            _out.Write('\r');
            _out.Write(line);
            _out.Write(EraseToEnd);
            _lineOpen = true;
            _current = line;
        }
        else
        {
            _out.WriteLine(line);
        }
        _out.Flush();
    }
}
