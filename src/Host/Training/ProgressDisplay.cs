namespace LiteVae.Host.Training;

/// <summary>
/// Shows the one-line progress (<see cref="Model.Training.ProgressTracker.Format"/>): redrawn in place
/// on a terminal, or printed as plain lines when the output is a file or pipe (no control characters
/// in logs). Messages (evaluations, checkpoints, warnings) go on their own lines. Thread-safe: the
/// checkpoint writer reports from its own thread.
/// </summary>
internal sealed class ProgressDisplay
{
    private readonly TextWriter _out;
    private readonly bool _inPlace;
    private readonly Lock _gate = new();
    private int _lastLength;

    public ProgressDisplay(TextWriter output, bool inPlace)
    {
        _out = output;
        _inPlace = inPlace;
    }

    public static ProgressDisplay ForConsole() => new(Console.Out, !Console.IsOutputRedirected);

    public void Progress(string line)
    {
        lock (_gate)
            ProgressLocked(line);
    }

    private void ProgressLocked(string line)
    {
        if (_inPlace)
        {
            _out.Write("\r" + line.PadRight(_lastLength));
            _lastLength = line.Length;
        }
        else
            _out.WriteLine(line);
        _out.Flush();
    }

    public void Message(string line)
    {
        lock (_gate)
            MessageLocked(line);
    }

    private void MessageLocked(string line)
    {
        if (_inPlace && _lastLength > 0)
        {
            _out.Write("\r" + new string(' ', _lastLength) + "\r");
            _lastLength = 0;
        }
        _out.WriteLine(line);
        _out.Flush();
    }
}
