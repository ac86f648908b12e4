namespace LiteVae.Model.Tests.Support;

/// <summary>Finds committed fixtures from the test binary's folder by walking up to the repository root.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures(params string[] parts) => Path.Combine([Root, "tests", "fixtures", .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LiteVae.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"LiteVae.sln not found above {AppContext.BaseDirectory}.");
    }
}
