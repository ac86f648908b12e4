using System.CommandLine;

namespace LiteVae.Host.Commands;

/// <summary>
/// What every verb shares: user errors become one line on stderr and a non-zero exit code, never a
/// stack trace (set LITEVAE_DEBUG=1 to see it).
/// </summary>
internal static class Cli
{
    public const int ExitUserError = 1;
    public const int ExitUsage = 2;

    public static void SetAction(Command command, Func<ParseResult, int> action) =>
        command.SetAction(parse => Run(() => action(parse)));

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : e;
            Console.Error.WriteLine($"error: {inner.Message}");
            if (Environment.GetEnvironmentVariable("LITEVAE_DEBUG") == "1")
                Console.Error.WriteLine(inner);
            return ExitUserError;
        }
    }
}
