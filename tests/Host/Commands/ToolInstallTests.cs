using System.Diagnostics;
using LiteVae.Host.Tests.Cluster;

namespace LiteVae.Host.Tests.Commands;

/// <summary>
/// The CLI as a .NET tool: `dotnet pack src/Host` makes a package that `dotnet tool install` takes from a
/// local folder (no other feed), and the installed `litevae` runs with its bundled libtorch.
/// </summary>
public class ToolInstallTests
{
    [Fact]
    public async Task A_locally_packed_litevae_installs_as_a_dotnet_tool_and_runs()
    {
        // The configuration this test was built with (bin/<Configuration>/net10.0/linux-x64): pack that build.
        string tail = Path.GetRelativePath(Path.Combine(NodeProcess.RepoRoot, "tests", "Host", "bin"), AppContext.BaseDirectory);
        string configuration = tail.Split(Path.DirectorySeparatorChar)[0];
        string work = Directory.CreateTempSubdirectory("litevae-tool-").FullName;
        try
        {
            string feed = Path.Combine(work, "feed"), tools = Path.Combine(work, "tools");
            await Run("dotnet", ["pack", Path.Combine(NodeProcess.RepoRoot, "src", "Host"), "-c", configuration, "--no-build", "-o", feed, "-nologo"],
                TimeSpan.FromMinutes(6));
            Assert.Single(Directory.GetFiles(feed, "litevae.*.nupkg"));

            // Only the local folder as a source: the install must not need any online feed.
            string config = Path.Combine(work, "nuget.config");
            File.WriteAllText(config, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            string installed = await Run("dotnet", ["tool", "install", "litevae", "--tool-path", tools, "--configfile", config], TimeSpan.FromMinutes(4));
            Assert.Contains("successfully installed", installed);

            string litevae = Path.Combine(tools, "litevae");
            Assert.Contains("train", await Run(litevae, ["--help"], TimeSpan.FromMinutes(1)));
            // doctor loads libtorch: proves the native libraries came with the package.
            string doctor = await Run(litevae, ["doctor"], TimeSpan.FromMinutes(2));
            Assert.Matches(@"TorchSharp\s+0\.\d+", doctor);
            Assert.Matches(@"cpu threads\s+\d+", doctor);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<string> Run(string file, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }
        string output = await stdout + await stderr;
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {p.ExitCode}:\n{output}");
        return output;
    }
}
