using System.Net;
using System.Net.Sockets;

namespace LiteVae.Bench;

/// <summary>
/// A minimal OTLP/HTTP receiver on loopback for benchmarks: accepts POST /v1/traces and /v1/metrics,
/// counts requests and bytes, answers 200 with an empty body. It lets "tracing on" pay the whole export
/// path (batching, protobuf encoding, HTTP) on machines with no collector and no network.
/// </summary>
internal sealed class OtlpSink : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private long _traceRequests, _metricRequests, _bytes;

    public OtlpSink()
    {
        int port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(Loop);
    }

    public string Endpoint { get; }
    public long TraceRequests => Interlocked.Read(ref _traceRequests);
    public long MetricRequests => Interlocked.Read(ref _metricRequests);
    public long Bytes => Interlocked.Read(ref _bytes);

    private async Task Loop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            using var body = new MemoryStream();
            await ctx.Request.InputStream.CopyToAsync(body);
            Interlocked.Add(ref _bytes, body.Length);
            string path = ctx.Request.Url?.AbsolutePath ?? "";
            if (path.EndsWith("/v1/traces", StringComparison.Ordinal)) Interlocked.Increment(ref _traceRequests);
            else if (path.EndsWith("/v1/metrics", StringComparison.Ordinal)) Interlocked.Increment(ref _metricRequests);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/x-protobuf";
            ctx.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
