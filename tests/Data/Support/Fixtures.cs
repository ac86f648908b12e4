namespace LiteVae.Data.Tests.Support;

/// <summary>Locates committed fixtures (tests/fixtures) and the bundled samples from the test binaries.</summary>
public static class Fixtures
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LiteVae.sln")))
                return dir.FullName;
        throw new InvalidOperationException("repository root (LiteVae.sln) not found above " + AppContext.BaseDirectory);
    });

    public static string RepoRoot => Root.Value;

    public static string Image(string name) => Path.Combine(RepoRoot, "tests", "fixtures", "images", name);

    public static byte[] Bytes(string name) => File.ReadAllBytes(Image(name));

    /// <summary>An expected H × W × 3 raw image with its size from manifest.txt.</summary>
    public static (int Width, int Height, byte[] Pixels) Raw(string name)
    {
        foreach (var line in File.ReadLines(Image("manifest.txt")))
        {
            var parts = line.Split(' ');
            if (parts[0] == name)
                return (int.Parse(parts[1]), int.Parse(parts[2]), File.ReadAllBytes(Image(name)));
        }
        throw new FileNotFoundException($"{name} is not in tests/fixtures/images/manifest.txt");
    }

    /// <summary>Converts planar C × H × W bytes to interleaved H × W × C.</summary>
    public static byte[] PlanarToInterleaved(ReadOnlySpan<byte> planar, int width, int height)
    {
        var result = new byte[width * height * 3];
        int plane = width * height;
        for (int i = 0; i < plane; i++)
        {
            result[i * 3] = planar[i];
            result[i * 3 + 1] = planar[plane + i];
            result[i * 3 + 2] = planar[2 * plane + i];
        }
        return result;
    }

    /// <summary>Largest absolute difference between two byte arrays of equal length.</summary>
    public static int MaxAbsDiff(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        Assert.Equal(a.Length, b.Length);
        int max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    public static string TempDir(string prefix)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"litevae-{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
