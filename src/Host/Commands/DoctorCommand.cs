using System.CommandLine;
using System.Runtime.InteropServices;
using LiteVae.Actors.Telemetry;
using LiteVae.Host.Telemetry;
using TorchSharp;

namespace LiteVae.Host.Commands;

/// <summary>`litevae doctor`: what this machine gives LiteVae (torch natives, CUDA devices, threads).</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor",
            "Check that the native libtorch loads and list the compute devices LiteVae can use.\n" +
            "GPU route: run with LD_LIBRARY_PATH=<site-packages>/torch/lib to use an installed PyTorch's CUDA libtorch.");
        Cli.SetAction(command, _ =>
        {
            Console.WriteLine($"runtime       {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription}");
            Console.WriteLine($"TorchSharp    {typeof(torch).Assembly.GetName().Version}");
            Console.WriteLine($"cpu threads   {torch.get_num_threads()} (of {Environment.ProcessorCount} logical cores)");
            bool cuda = torch.cuda.is_available();
            Console.WriteLine($"cuda          {(cuda ? $"available, {torch.cuda.device_count()} device(s)" : "not available")}");
            if (cuda)
            {
                Console.WriteLine($"cudnn         {(torch.cuda.is_cudnn_available() ? "available" : "not available")}");
                for (int i = 0; i < torch.cuda.device_count(); i++)
                {
                    using var probe = torch.ones(1, device: torch.CUDA).mul(2);
                    Console.WriteLine($"device {i}      cuda:{i} ok (test op = {probe.cpu().item<float>()})");
                }
            }
            Console.WriteLine($"telemetry     {TelemetryStatus()}");
            var gpus = GpuMemory.Read();
            Console.WriteLine($"gpu memory    {(gpus.Count == 0 ? "no NVIDIA driver (NVML) found" : string.Join(", ", gpus.Select(g => $"gpu{g.Index} {g.Used / 1e9:F1}/{g.Total / 1e9:F1} GB used")))}");
            return 0;
        });
        return command;
    }

    /// <summary>What the OTEL_* variables would make a LiteVae command export.</summary>
    private static string TelemetryStatus()
    {
        try
        {
            var config = OtelSettings.FromEnvironment(null);
            var s = OtelSettings.From(config);
            if (!s.Any) return "off (set OTEL_EXPORTER_OTLP_ENDPOINT or pass --otlp to export traces and metrics)";
            string signals = s.Traces && s.Metrics ? "traces and metrics" : s.Traces ? "traces" : "metrics";
            string endpoint = config[OtelSettings.Endpoint] ?? config[OtelSettings.TracesEndpoint] ?? config[OtelSettings.MetricsEndpoint] ?? "";
            return $"{signals} to {endpoint} ({config[OtelSettings.Protocol] ?? "grpc"})";
        }
        catch (Config.ConfigException e)
        {
            return $"misconfigured: {e.Message}";
        }
    }
}
