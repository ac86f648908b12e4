namespace LiteVae.Data.Shards;

/// <summary>
/// WebDataset naming: a sample's key is the entry path up to the first dot of its file name, the
/// extension is the rest ("a/b/x.seg.png" → key "a/b/x", extension "seg.png"). Consecutive entries
/// with the same key form one sample.
/// </summary>
public static class WebDatasetName
{
    public static readonly string[] ImageExtensions = ["jpg", "jpeg", "png", "webp"];
    public static readonly string[] MetadataExtensions = ["cls", "json", "txt"];

    /// <summary>Key and lower-case extension; Key is null for names without a usable extension (e.g. "README", ".hidden").</summary>
    public static (string? Key, string Extension) Split(string name)
    {
        int slash = name.LastIndexOf('/');
        int dot = name.IndexOf('.', slash + 1);
        if (dot <= slash + 1 || dot == name.Length - 1) return (null, "");
        return (name[..dot], name[(dot + 1)..].ToLowerInvariant());
    }

    public static bool IsImage(string extension) => Array.IndexOf(ImageExtensions, extension) >= 0;

    public static bool IsMetadata(string extension) => Array.IndexOf(MetadataExtensions, extension) >= 0;
}
