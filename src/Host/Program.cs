using System.CommandLine;
using LiteVae.Host.Commands;

namespace LiteVae.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand(
            "LiteVae: train, evaluate and serve LiteVAE (the wavelet-encoder VAE for latent diffusion).\n" +
            "Run 'litevae <command> --help' for the options of each command.");
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }
}
