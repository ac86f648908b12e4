namespace LiteVae.Data.Shards;

/// <summary>One image of a folder, with its sidecar metadata files (same path stem, .cls/.json/.txt).</summary>
public sealed record FolderSample(string Key, string ImagePath, string ImageExtension, IReadOnlyDictionary<string, string> Sidecars);

/// <summary>
/// Lists the images under a folder (recursively, in ordinal order of their relative paths) as
/// samples. The key is the relative path without its extension, with '/' separators; a sidecar
/// "x.json" next to "x.jpg" joins that sample. When two images share a stem ("x.jpg", "x.png") the
/// later ones get the extension appended to their key ("x_png").
/// </summary>
public static class ImageFolder
{
    public static IReadOnlyList<FolderSample> List(string root)
    {
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"{root}: folder not found.");
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
        var files = Directory.EnumerateFiles(root, "*", options)
            .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(f => !f.Split('/').Any(part => part.StartsWith('.')))
            .Order(StringComparer.Ordinal)
            .ToList();
        var sidecars = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            var (stem, ext) = StemAndExtension(f);
            if (stem is not null && WebDatasetName.IsMetadata(ext))
            {
                if (!sidecars.TryGetValue(stem, out var d)) sidecars[stem] = d = new Dictionary<string, string>();
                d[ext] = Path.Combine(root, f);
            }
        }
        var result = new List<FolderSample>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            var (stem, ext) = StemAndExtension(f);
            if (stem is null || !WebDatasetName.IsImage(ext)) continue;
            string key = used.Add(stem) ? stem : UniqueKey(stem + "_" + ext, used);
            IReadOnlyDictionary<string, string> side = sidecars.TryGetValue(stem, out var s) && key == stem
                ? s : new Dictionary<string, string>();
            result.Add(new FolderSample(key, Path.Combine(root, f), ext, side));
        }
        return result;
    }

    private static string UniqueKey(string key, HashSet<string> used)
    {
        string candidate = key;
        for (int i = 2; !used.Add(candidate); i++) candidate = $"{key}_{i}";
        return candidate;
    }

    /// <summary>Path without its last extension, and that extension in lower case.</summary>
    public static (string? Stem, string Extension) StemAndExtension(string relativePath)
    {
        int slash = relativePath.LastIndexOf('/');
        int dot = relativePath.LastIndexOf('.');
        if (dot <= slash + 1) return (null, "");
        return (relativePath[..dot], relativePath[(dot + 1)..].ToLowerInvariant());
    }
}
