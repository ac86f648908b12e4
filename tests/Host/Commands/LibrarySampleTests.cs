using System.Diagnostics;
using LiteVae.Host.Tests.Cluster;

namespace LiteVae.Host.Tests.Commands;

/// <summary>samples/LibraryUse, a program of its own on the model and data libraries, builds and runs.</summary>
public class LibrarySampleTests
{
    [Fact]
    public async Task The_library_sample_encodes_a_photo_and_decodes_it_back()
    {
        // Same configuration and runtime folder as this test's own build (bin/Release/net10.0/linux-x64).
        string tail = Path.GetRelativePath(Path.Combine(NodeProcess.RepoRoot, "tests", "Host", "bin"), AppContext.BaseDirectory);
        string dll = Path.Combine(NodeProcess.RepoRoot, "samples", "LibraryUse", "bin", tail, "LibraryUse.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(Path.Combine(NodeProcess.RepoRoot, "tests", "fixtures", "images", "baseline.jpg"));
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token);
        string output = await stdout + await stderr;
        Assert.True(p.ExitCode == 0, output);
        // LiteVAE-B with nz 12 maps a side-S crop to a 12 x S/8 x S/8 latent.
        Assert.Matches(@"(\d+)x\1 crop -> latent \[1, 12, \d+, \d+\].*reconstruction PSNR \d+\.\d+ dB \(random weights\)", output);
    }
}
