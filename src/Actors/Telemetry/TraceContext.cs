using System.Diagnostics;

namespace LiteVae.Actors.Telemetry;

/// <summary>
/// W3C trace context carried inside messages. <c>Activity.Current</c> does not cross a mailbox (nor a
/// node), so the sender writes its span's <c>traceparent</c> into the message's <c>TraceParent</c> field
/// and the receiver starts a Consumer span from it: one trace then runs from the CLI client through the
/// coordinator to the node that does the work.
/// </summary>
public static class TraceContext
{
    /// <summary>
    /// The <c>traceparent</c> string (<c>00-&lt;trace-id&gt;-&lt;span-id&gt;-&lt;flags&gt;</c>) of
    /// <paramref name="activity"/>, or null when there is none (tracing off) or it is not W3C.
    /// </summary>
    public static string? Inject(Activity? activity) =>
        activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;

    /// <summary>The <c>traceparent</c> of the span running on this thread now (null when none).</summary>
    public static string? Current => Inject(Activity.Current);

    /// <summary>Parses a <c>traceparent</c>; false for null, empty or malformed input (never throws:
    /// a bad header from another process must not fail the work it came with).</summary>
    public static bool TryExtract(string? traceParent, out ActivityContext context)
    {
        context = default;
        return !string.IsNullOrEmpty(traceParent)
               && ActivityContext.TryParse(traceParent, traceState: null, isRemote: true, out context);
    }

    /// <summary>
    /// Starts the span of a received message: a child of the sender's span when the message carries a
    /// valid <paramref name="traceParent"/>, otherwise a new root. It never parents to whatever
    /// <c>Activity.Current</c> the dispatcher thread happens to hold (a mailbox run may inherit the
    /// execution context of an unrelated sender). Null when nobody listens to <paramref name="source"/>.
    /// </summary>
    public static Activity? StartConsumer(this ActivitySource source, string name, string? traceParent,
        IEnumerable<KeyValuePair<string, object?>>? tags = null) =>
        StartDetached(source, name, ActivityKind.Consumer, traceParent, tags, links: null);

    /// <summary>
    /// Starts a new root span (own trace) that links to the spans whose work it serves: fan-out work
    /// (an eval job's batches, a shard read for many requests) stays navigable without one giant trace.
    /// Invalid or null parents are skipped.
    /// </summary>
    public static Activity? StartLinkedRoot(this ActivitySource source, string name, ActivityKind kind,
        IEnumerable<string?> linkedTraceParents, IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        var links = new List<ActivityLink>();
        foreach (var tp in linkedTraceParents)
            if (TryExtract(tp, out var ctx))
                links.Add(new ActivityLink(ctx));
        return StartDetached(source, name, kind, traceParent: null, tags, links);
    }

    /// <summary>
    /// <see cref="StartLinkedRoot"/> for a span an actor holds across messages (a batch stream): its own
    /// trace, linked to the spans it serves, never the dispatcher thread's current span. End it with
    /// <see cref="EndHeld"/>. A held span lasts as long as its work, so nothing may be its child but work
    /// that ends before it (a child whose parent is still open shows as a missing root in Jaeger).
    /// </summary>
    public static Activity? StartHeldLinkedRoot(this ActivitySource source, string name, ActivityKind kind,
        IEnumerable<string?> linkedTraceParents, IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        var ambient = Activity.Current;
        var span = StartLinkedRoot(source, name, kind, linkedTraceParents, tags);
        Activity.Current = ambient;
        return span;
    }

    /// <summary>
    /// Writes a span that starts and ends now (a run starting, resuming or ending) as its own trace linked to
    /// <paramref name="linkedTraceParents"/>: complete in the backend as soon as it is exported, so traces
    /// that link to it or are its children never show a missing root. Returns its <c>traceparent</c>
    /// (null when nobody listens); <paramref name="fill"/> sets what is known only at the end (status).
    /// </summary>
    public static string? WriteMarker(this ActivitySource source, string name, IEnumerable<string?> linkedTraceParents,
        IEnumerable<KeyValuePair<string, object?>> tags, Action<Activity>? fill = null)
    {
        var span = StartHeldLinkedRoot(source, name, ActivityKind.Internal, linkedTraceParents, tags);
        if (span is null) return null;
        fill?.Invoke(span);
        string? traceParent = Inject(span);
        span.EndHeld();
        return traceParent;
    }

    /// <summary>
    /// Starts a span of <paramref name="kind"/> under <paramref name="traceParent"/> (a new root when it is
    /// null or malformed), detached from any ambient span, for work whose end is on this thread's stack
    /// (dispose it there) or in an async flow started here.
    /// </summary>
    public static Activity? StartFrom(this ActivitySource source, string name, ActivityKind kind, string? traceParent,
        IEnumerable<KeyValuePair<string, object?>>? tags = null) =>
        StartDetached(source, name, kind, traceParent, tags, links: null);

    /// <summary>
    /// Starts a span that an actor holds across messages (a run, an eval job): it never becomes
    /// <c>Activity.Current</c> of the dispatcher thread, which would make it the parent of unrelated work
    /// handled on that thread later. End it with <see cref="EndHeld"/>.
    /// </summary>
    public static Activity? StartHeld(this ActivitySource source, string name, ActivityKind kind, string? traceParent,
        IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        var ambient = Activity.Current;
        var span = StartDetached(source, name, kind, traceParent, tags, links: null);
        Activity.Current = ambient;
        return span;
    }

    /// <summary>Ends a span started with <see cref="StartHeld"/>, leaving this thread's current span as it was.</summary>
    public static void EndHeld(this Activity? span)
    {
        if (span is null || span.IsStopped) return;
        var ambient = Activity.Current;
        span.Stop();
        Activity.Current = ambient == span ? null : ambient;
    }

    /// <summary>Marks a span failed with the exception's message (and records the exception once).</summary>
    public static void Fail(this Activity? activity, Exception error)
    {
        if (activity is null) return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.AddException(error);
    }

    /// <summary>Marks a span failed with a reason a user can read.</summary>
    public static void Fail(this Activity? activity, string reason) =>
        activity?.SetStatus(ActivityStatusCode.Error, reason);

    private static Activity? StartDetached(ActivitySource source, string name, ActivityKind kind, string? traceParent,
        IEnumerable<KeyValuePair<string, object?>>? tags, IEnumerable<ActivityLink>? links)
    {
        if (!source.HasListeners()) return null;
        if (TryExtract(traceParent, out var parent))
            return source.StartActivity(kind, parent, tags, links, default, name);
        // A root: hide any ambient span from StartActivity; when the new span stops, Current returns to
        // null, which is also what the next message on this thread should see.
        var ambient = Activity.Current;
        Activity.Current = null;
        var root = source.StartActivity(kind, default, tags, links, default, name);
        if (root is null) Activity.Current = ambient;
        return root;
    }
}
