using System.Runtime.InteropServices;

namespace LiteVae.Model.Distributed.Nccl;

/// <summary>
/// Finds a CUDA-side shared library (libnccl, libcudart) the way the installed PyTorch does, so the process
/// uses the copy libtorch already loaded (one NCCL, one CUDA runtime per process):
/// 1. an explicit path (configuration);
/// 2. a copy already mapped into this process (<c>/proc/self/maps</c>): libtorch_cuda links NCCL and cudart;
/// 3. the pip layout next to the loaded libtorch: <c>site-packages/torch/lib</c> → <c>site-packages/nvidia/*/lib</c>;
/// 4. extra directories the host passes (python site-packages, LD_LIBRARY_PATH entries), in the same layouts;
/// 5. the plain soname through the normal dynamic-loader search (a system install).
/// </summary>
public static class NativeLibraryLocator
{
    /// <summary>Paths of the shared objects mapped into this process (Linux), or none.</summary>
    public static IReadOnlyList<string> MappedLibraries(string mapsFile = "/proc/self/maps")
    {
        if (!File.Exists(mapsFile))
            return [];
        var paths = new List<string>();
        var seen = new HashSet<string>();
        foreach (var line in File.ReadLines(mapsFile))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..].Trim();
            if (path.Contains(".so", StringComparison.Ordinal) && seen.Add(path))
                paths.Add(path);
        }
        return paths;
    }

    /// <summary>The directory of the loaded libtorch (torch/lib of a PyTorch install), if any.</summary>
    public static string? LoadedTorchLibDirectory(IReadOnlyList<string> mapped)
    {
        foreach (var name in new[] { "libtorch_cuda.so", "libtorch_cpu.so", "libtorch.so" })
            foreach (var p in mapped)
                if (Path.GetFileName(p) == name)
                    return Path.GetDirectoryName(p);
        return null;
    }

    /// <param name="fileNames">Sonames to try, most specific first (libnccl.so.2).</param>
    /// <param name="pipSubdirs">Layouts below a site-packages directory (nvidia/nccl/lib).</param>
    /// <returns>The candidates in the order they are tried, each with where it came from.</returns>
    public static List<(string Path, string Source)> Candidates(string? configured, IReadOnlyList<string> fileNames, IReadOnlyList<string> pipSubdirs,
        IReadOnlyList<string> searchDirectories, IReadOnlyList<string> mapped)
    {
        var list = new List<(string, string)>();
        if (!string.IsNullOrWhiteSpace(configured))
        {
            list.Add((configured, "the configured path"));
            return list;   // an explicit path is the only candidate: never silently use another copy
        }
        var prefix = fileNames.Select(f => f.Split(".so")[0] + ".so").Distinct().ToList();
        foreach (var m in mapped)
            if (prefix.Any(pre => Path.GetFileName(m).StartsWith(pre, StringComparison.Ordinal)))
                list.Add((m, "already loaded in this process"));
        var torchLib = LoadedTorchLibDirectory(mapped);
        var roots = new List<(string Dir, string Source)>();
        if (torchLib is not null)
        {
            roots.Add((torchLib, "the loaded libtorch's directory"));
            var sitePackages = Path.GetFullPath(Path.Combine(torchLib, "..", ".."));
            roots.Add((sitePackages, "the loaded PyTorch's site-packages"));
        }
        foreach (var d in searchDirectories.Where(d => !string.IsNullOrWhiteSpace(d)))
            roots.Add((d, "a search directory"));
        foreach (var (dir, source) in roots)
        {
            foreach (var f in fileNames)
                list.Add((Path.Combine(dir, f), source));
            foreach (var sub in pipSubdirs)
                foreach (var f in fileNames)
                    list.Add((Path.Combine(dir, sub, f), source));
        }
        foreach (var f in fileNames)
            list.Add((f, "the dynamic loader's search path"));
        return list;
    }

    /// <summary>Loads the first candidate that loads; the error names every place tried.</summary>
    public static (IntPtr Handle, string Path) Load(string what, IEnumerable<(string Path, string Source)> candidates, string hint)
    {
        var tried = new List<string>();
        foreach (var (path, source) in candidates)
        {
            bool isBareName = !path.Contains('/');
            if (!isBareName && !File.Exists(path))
            {
                tried.Add($"{path} ({source}: not there)");
                continue;
            }
            if (NativeLibrary.TryLoad(path, out var handle))
                return (handle, path);
            tried.Add($"{path} ({source}: did not load)");
        }
        throw new DllNotFoundException($"{what} was not found. Tried: {string.Join("; ", tried.Distinct())}. {hint}");
    }
}
