using System.Diagnostics;
using LiteVae.Actors.Telemetry;

namespace LiteVae.Host.Telemetry;

/// <summary>
/// What a traced CLI verb does around its work: start OTLP export (when configured), open the command's
/// root span, mark it failed when the work throws, then end it and flush before the process exits.
/// </summary>
public sealed class CommandTrace : IDisposable
{
    private readonly OtelSession _session;

    private CommandTrace(OtelSession session, Activity? span)
    {
        _session = session;
        Span = span;
    }

    /// <summary>The command's span (null when nothing is exported).</summary>
    public Activity? Span { get; }

    /// <summary>The <c>traceparent</c> to put into messages this command sends.</summary>
    public string? TraceParent => TraceContext.Inject(Span);

    /// <param name="role">Service role: <c>litevae-&lt;role&gt;</c> unless OTEL_SERVICE_NAME says otherwise.</param>
    /// <param name="command">The verb as typed, e.g. <c>eval</c> or <c>shards pack</c>.</param>
    public static CommandTrace Start(string role, string command, string? otlp, IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        var session = OtelSession.Start(role, otlp);
        return new CommandTrace(session, OtelSession.StartCommand(command, tags: tags));
    }

    /// <summary>Runs the verb's body; an exception marks the span failed and propagates (Cli turns it into one line).</summary>
    public T Run<T>(Func<T> body)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            Span.Fail(e is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : e);
            throw;
        }
    }

    public void Dispose()
    {
        Span?.Dispose();
        _session.Dispose();
    }
}
