using System.CommandLine;
using LiteVae.Host.Commands;

namespace LiteVae.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand(
            "LiteVae: train, evaluate and serve LiteVAE (the wavelet-encoder VAE for latent diffusion).\n" +
            "Run 'litevae <command> --help' for the options of each command.\n\n" +
            "Environment:\n" +
            "  LITEVAE_WEIGHTS              folder of the LPIPS/rFID weight files (else ~/.cache/litevae/weights; --weights-dir wins)\n" +
            "  LITEVAE_DEBUG=1              print the stack trace of an error, not just its one line\n" +
            "  OTEL_EXPORTER_OTLP_ENDPOINT  export traces and metrics there (--otlp wins); the other OTEL_* variables keep their\n" +
            "                               OpenTelemetry meaning (protocol, headers, service name, sampler, export interval)");
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }
}
