using System.Net;
using System.Net.Sockets;

namespace LiteVae.Data.Tests.Support;

/// <summary>A tiny HTTP server on 127.0.0.1 serving byte arrays by path (404 otherwise).</summary>
public sealed class LocalHttpServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, byte[]> _files;
    private readonly Task _loop;

    public LocalHttpServer(Dictionary<string, byte[]> files)
    {
        _files = files;
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }
    public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

    /// <summary>A port nothing listens on (bound and released), for "unreachable URL" tests.</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch { return; }
            string path = ctx.Request.Url!.AbsolutePath.TrimStart('/');
            if (_files.TryGetValue(path, out var data))
            {
                // Byte ranges ("bytes=a-b"), as file servers and object stores answer them; the rest whole.
                var range = System.Text.RegularExpressions.Regex.Match(ctx.Request.Headers["Range"] ?? "", @"^bytes=(\d+)-(\d+)$");
                if (range.Success && !path.StartsWith("norange/", StringComparison.Ordinal))
                {
                    int from = int.Parse(range.Groups[1].Value), to = Math.Min(int.Parse(range.Groups[2].Value), data.Length - 1);
                    data = data[from..(to + 1)];
                    ctx.Response.StatusCode = 206;
                }
                else ctx.Response.StatusCode = 200;
                ctx.Response.ContentLength64 = data.Length;
                try { await ctx.Response.OutputStream.WriteAsync(data); } catch { }
            }
            else
            {
                ctx.Response.StatusCode = 404;
            }
            ctx.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(2000); } catch { }
    }
}
