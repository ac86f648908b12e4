using LiteVae.Model.Perceptual;

namespace LiteVae.Host.Config;

/// <summary>
/// Where the pretrained weight files (VGG16, AlexNet, LPIPS heads, FID Inception) are looked for:
/// the --weights-dir option if given, else $LITEVAE_WEIGHTS, else ~/.cache/litevae/weights.
/// </summary>
public static class WeightsFolder
{
    public const string EnvironmentVariable = "LITEVAE_WEIGHTS";

    public static WeightFiles Resolve(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option)) return new WeightFiles(option, "--weights-dir");
        var (folder, origin) = WeightFiles.DefaultFolder(
            Environment.GetEnvironmentVariable(EnvironmentVariable),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
        return new WeightFiles(folder, origin);
    }
}
