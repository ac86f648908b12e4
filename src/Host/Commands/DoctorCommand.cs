using System.CommandLine;
using System.Runtime.InteropServices;
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
            return 0;
        });
        return command;
    }
}
