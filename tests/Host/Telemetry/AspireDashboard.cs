using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace LiteVae.Host.Tests.Telemetry;

/// <summary>
/// A real OTLP backend on loopback for the tracing tests: the Aspire Dashboard, restored from NuGet by
/// the test project's PackageDownload. It takes OTLP over gRPC and HTTP and serves what it received as
/// OTLP JSON at <c>/api/telemetry/traces</c>. Started on free ports, killed on dispose.
/// </summary>
public sealed class AspireDashboard : IAsyncLifetime
{
    private Process? _process;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public string GrpcEndpoint { get; private set; } = "";
    public string HttpEndpoint { get; private set; } = "";
    public string ApiBase { get; private set; } = "";

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public static string ExecutablePath =>
        typeof(AspireDashboard).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "AspireDashboardPath").Value!;

    public async Task InitializeAsync()
    {
        string exe = ExecutablePath;
        if (!File.Exists(exe))
            throw new FileNotFoundException($"the Aspire Dashboard is not at {exe}; run `dotnet restore tests/Host` (PackageDownload).");
        // NuGet does not promise to keep the executable bit of files it extracts.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(exe, File.GetUnixFileMode(exe) | UnixFileMode.UserExecute);

        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)   // a free port can be taken between probe and bind
        {
            int ui = FreePort(), grpc = FreePort(), http = FreePort();
            ApiBase = $"http://127.0.0.1:{ui}";
            GrpcEndpoint = $"http://127.0.0.1:{grpc}";
            HttpEndpoint = $"http://127.0.0.1:{http}";
            var psi = new ProcessStartInfo(exe)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Path.GetDirectoryName(exe)!,
            };
            psi.Environment["ASPNETCORE_URLS"] = ApiBase;
            psi.Environment["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = GrpcEndpoint;
            psi.Environment["ASPIRE_DASHBOARD_OTLP_HTTP_ENDPOINT_URL"] = HttpEndpoint;
            psi.Environment["ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS"] = "true";
            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            // The tests' own OTEL_* settings must not leak into the backend.
            foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList())
                psi.Environment.Remove(key);
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            try
            {
                await WaitReady(TimeSpan.FromSeconds(60));
                return;
            }
            catch (Exception e)
            {
                last = e;
                await DisposeAsync();
            }
        }
        throw new InvalidOperationException($"the Aspire Dashboard did not start: {last?.Message}\n{Log}");
    }

    private async Task WaitReady(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (_process!.HasExited)
                throw new InvalidOperationException($"exited with code {_process.ExitCode}");
            try
            {
                using var r = await _http.GetAsync($"{ApiBase}/api/telemetry/resources");
                if (r.IsSuccessStatusCode && Listening(GrpcEndpoint) && Listening(HttpEndpoint))
                    return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"not ready after {timeout.TotalSeconds:F0}s");
    }

    /// <summary>All spans the backend holds now, flattened.</summary>
    public async Task<List<ExportedSpan>> Spans()
    {
        string json = await _http.GetStringAsync($"{ApiBase}/api/telemetry/traces");
        return ExportedSpan.Parse(json);
    }

    /// <summary>Polls until <paramref name="done"/> holds for the spans received (export is asynchronous).</summary>
    public async Task<List<ExportedSpan>> WaitForSpans(Func<List<ExportedSpan>, bool> done, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        List<ExportedSpan> spans = [];
        while (sw.Elapsed < timeout)
        {
            spans = await Spans();
            if (done(spans)) return spans;
            await Task.Delay(250);
        }
        throw new TimeoutException($"the backend did not receive the expected spans within {timeout.TotalSeconds:F0}s; it has:\n" +
                                   string.Join("\n", spans.Select(s => $"  {s}")));
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process?.Dispose();
        _process = null;
        return Task.CompletedTask;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static bool Listening(string url)
    {
        var uri = new Uri(url);
        try
        {
            using var c = new TcpClient();
            c.Connect(uri.Host, uri.Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>One span as the backend returned it (OTLP JSON), with its resource's service name.</summary>
public sealed record ExportedSpan(
    string Service, string Scope, string TraceId, string SpanId, string? ParentSpanId, string Name, int Kind,
    int StatusCode, string? StatusMessage, IReadOnlyDictionary<string, string> Attributes,
    IReadOnlyDictionary<string, string> Resource, IReadOnlyList<(string TraceId, string SpanId)> Links,
    long StartNanos, long EndNanos)
{
    public const int KindInternal = 1, KindServer = 2, KindClient = 3, KindProducer = 4, KindConsumer = 5;
    public const int StatusError = 2;

    public string? Attr(string key) => Attributes.TryGetValue(key, out var v) ? v : null;

    public override string ToString() =>
        $"{Service} {Scope} '{Name}' trace={TraceId} span={SpanId} parent={ParentSpanId ?? "-"} " +
        string.Join(" ", Attributes.Select(kv => $"{kv.Key}={kv.Value}"));

    public static List<ExportedSpan> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var list = new List<ExportedSpan>();
        foreach (var rs in doc.RootElement.GetProperty("data").GetProperty("resourceSpans").EnumerateArray())
        {
            var resource = rs.TryGetProperty("resource", out var r) ? Attrs(r) : new Dictionary<string, string>();
            string service = resource.GetValueOrDefault("service.name", "");
            foreach (var ss in rs.GetProperty("scopeSpans").EnumerateArray())
            {
                string scope = ss.TryGetProperty("scope", out var sc) && sc.TryGetProperty("name", out var n) ? n.GetString()! : "";
                foreach (var s in ss.GetProperty("spans").EnumerateArray())
                {
                    var links = new List<(string, string)>();
                    if (s.TryGetProperty("links", out var ls))
                        foreach (var l in ls.EnumerateArray())
                            links.Add((l.GetProperty("traceId").GetString()!, l.GetProperty("spanId").GetString()!));
                    int status = 0;
                    string? message = null;
                    if (s.TryGetProperty("status", out var st))
                    {
                        if (st.TryGetProperty("code", out var c)) status = c.GetInt32();
                        if (st.TryGetProperty("message", out var m)) message = m.GetString();
                    }
                    list.Add(new ExportedSpan(service, scope, s.GetProperty("traceId").GetString()!, s.GetProperty("spanId").GetString()!,
                        s.TryGetProperty("parentSpanId", out var p) && p.GetString() is { Length: > 0 } ps ? ps : null,
                        s.GetProperty("name").GetString()!, s.TryGetProperty("kind", out var k) ? k.GetInt32() : 0, status, message,
                        Attrs(s), resource, links, Nanos(s, "startTimeUnixNano"), Nanos(s, "endTimeUnixNano")));
                }
            }
        }
        return list;
    }

    private static long Nanos(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? long.Parse(v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()) : 0;

    private static Dictionary<string, string> Attrs(JsonElement owner)
    {
        var d = new Dictionary<string, string>();
        if (!owner.TryGetProperty("attributes", out var attrs)) return d;
        foreach (var a in attrs.EnumerateArray())
        {
            var v = a.GetProperty("value");
            string text = v.EnumerateObject().FirstOrDefault() is { Value: var inner } && inner.ValueKind != JsonValueKind.Undefined
                ? inner.ValueKind == JsonValueKind.String ? inner.GetString()! : inner.GetRawText().Trim('"')
                : "";
            d[a.GetProperty("key").GetString()!] = text;
        }
        return d;
    }
}
