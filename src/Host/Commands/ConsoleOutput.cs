using LiteVae.Host.Terminal;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Host.Commands;

/// <summary>How long-running verbs show progress on this process's stdout.</summary>
internal static class ConsoleOutput
{
    /// <summary>True when stdout is a terminal that can redraw a line (not redirected, TERM not <c>dumb</c>).</summary>
    public static bool Interactive =>
        !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not "dumb";

    /// <param name="logInterval">Time between plain lines when stdout is a file or pipe.</param>
    public static ConsoleProgress Progress(TimeSpan logInterval) => new(Console.Out, Interactive, logInterval);
}
