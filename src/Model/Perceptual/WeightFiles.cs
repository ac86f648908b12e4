using System.Security.Cryptography;
using LiteVae.Model.Checkpoints;
using static TorchSharp.torch;

namespace LiteVae.Model.Perceptual;

/// <summary>The pretrained files the perceptual networks need.</summary>
public enum PretrainedFile
{
    Vgg16,
    AlexNet,
    LpipsVggHeads,
    LpipsAlexHeads,
    FidInception,
}

/// <summary>One well-known weight file: the name it has in the weights folder and where to get it.</summary>
/// <param name="Stem">File name without extension; <c>.safetensors</c> (converted) or <c>.pth</c> (original) is accepted.</param>
/// <param name="Sha256Prefix">For torchvision files, whose names end in the first hex digits of their SHA-256.</param>
public sealed record PretrainedFileInfo(PretrainedFile Id, string Stem, string Url, string Purpose, string? Sha256Prefix);

/// <summary>
/// Finds pretrained weight files in one folder under well-known names (e.g.
/// <c>vgg16-397923af.pth</c>, or its conversion <c>vgg16-397923af.safetensors</c>). Which folder is
/// the host's decision (<c>--weights-dir</c>, <c>$LITEVAE_WEIGHTS</c>, else <c>~/.cache/litevae/weights</c>,
/// see <see cref="DefaultFolder"/>); this class only looks and explains what it did not find.
/// </summary>
public sealed class WeightFiles
{
    public static readonly IReadOnlyList<PretrainedFileInfo> Known =
    [
        new(PretrainedFile.Vgg16, "vgg16-397923af", "https://download.pytorch.org/models/vgg16-397923af.pth",
            "LPIPS-VGG backbone (torchvision VGG16, ImageNet)", "397923af"),
        new(PretrainedFile.AlexNet, "alexnet-owt-7be5be79", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "LPIPS-Alex backbone (torchvision AlexNet, ImageNet)", "7be5be79"),
        new(PretrainedFile.LpipsVggHeads, "lpips-v0.1-vgg", "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
            "LPIPS v0.1 linear heads for VGG (the lpips package's weights/v0.1/vgg.pth, renamed)", null),
        new(PretrainedFile.LpipsAlexHeads, "lpips-v0.1-alex", "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            "LPIPS v0.1 linear heads for AlexNet (the lpips package's weights/v0.1/alex.pth, renamed)", null),
        new(PretrainedFile.FidInception, FidInceptionV3.WeightFileStem,
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            "FID Inception-v3 (pytorch-fid's port of the TensorFlow FID network)", null),
    ];

    /// <param name="folder">The weights folder.</param>
    /// <param name="origin">How the folder was chosen, for messages (e.g. "$LITEVAE_WEIGHTS", "--weights-dir", "default").</param>
    public WeightFiles(string folder, string origin)
    {
        Folder = Path.GetFullPath(folder);
        Origin = origin;
    }

    public string Folder { get; }

    public string Origin { get; }

    /// <summary>The folder to use when none is given: the environment value if set, else ~/.cache/litevae/weights.</summary>
    public static (string Folder, string Origin) DefaultFolder(string? environmentValue, string homeDirectory) =>
        string.IsNullOrWhiteSpace(environmentValue)
            ? (Path.Combine(homeDirectory, ".cache", "litevae", "weights"), "default")
            : (environmentValue, "$LITEVAE_WEIGHTS");

    public static PretrainedFileInfo Info(PretrainedFile id) => Known.Single(k => k.Id == id);

    /// <summary>The path of a file (the safetensors conversion preferred), or why it is unavailable.</summary>
    public Availability<string> Find(PretrainedFile id)
    {
        var info = Info(id);
        string converted = Path.Combine(Folder, info.Stem + ".safetensors");
        string original = Path.Combine(Folder, info.Stem + ".pth");
        if (File.Exists(converted)) return Availability<string>.Available(converted);
        if (File.Exists(original)) return Availability<string>.Available(original);
        return Availability<string>.Unavailable(
            $"{info.Stem}.pth (or {info.Stem}.safetensors) not found in {Folder} (weights folder: {Origin}). " +
            $"It holds the {info.Purpose}; download {info.Url} into that folder as {info.Stem}.pth" +
            $" (optionally convert it once with `litevae weights convert`), or point --weights-dir / LITEVAE_WEIGHTS at a folder that has it.");
    }

    /// <summary>
    /// Loads a found file's tensors (safetensors, or a PyTorch file read without running pickle code).
    /// A torchvision .pth whose SHA-256 does not start with the digits in its name is refused.
    /// </summary>
    public static Dictionary<string, Tensor> LoadTensors(PretrainedFileInfo info, string path, Func<string, bool>? include = null)
    {
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return Safetensors.Load(path, include);
        if (info.Sha256Prefix is { } prefix)
        {
            string digest;
            using (var stream = File.OpenRead(path))
                digest = Convert.ToHexStringLower(SHA256.HashData(stream));
            if (!digest.StartsWith(prefix, StringComparison.Ordinal))
                throw new InvalidDataException($"{path}: SHA-256 {digest[..8]}… does not start with {prefix} as the official file's does " +
                    $"(an interrupted download or a different file); download {info.Url} again.");
        }
        return PyTorchFile.Load(path, include);
    }
}
