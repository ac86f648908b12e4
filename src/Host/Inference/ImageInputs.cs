using LiteVae.Data.Imaging;
using static TorchSharp.torch;

namespace LiteVae.Host.Inference;

/// <summary>Image files named on the command line, and their conversion to uint8 batches.</summary>
public static class ImageInputs
{
    /// <summary>One image file, or every image file (PNG/JPEG/WebP) of a folder in ordinal file-name order.</summary>
    public static IReadOnlyList<string> Resolve(string input)
    {
        if (Directory.Exists(input))
        {
            var files = Directory.EnumerateFiles(input).Where(ImageFile.IsImagePath)
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
            if (files.Count == 0)
                throw new ArgumentException($"{input}: the folder has no image files ({string.Join(", ", ImageFile.Extensions)}).");
            return files;
        }
        if (File.Exists(input))
            return [input];
        throw new FileNotFoundException($"{input}: no such image file or folder.", input);
    }

    /// <summary>
    /// Reads images into a uint8 N x H x W x 3 tensor (CPU). All must have the size of
    /// <paramref name="expected"/> (when given) and sides that are multiples of <paramref name="multiple"/>.
    /// </summary>
    public static Tensor ReadBatch(IReadOnlyList<string> files, int multiple, ref (int Width, int Height)? expected)
    {
        var images = new List<RgbImage>(files.Count);
        foreach (var f in files)
        {
            var img = ImageFile.Read(f);
            if (img.Width % multiple != 0 || img.Height % multiple != 0)
                throw new ArgumentException($"{f}: image is {img.Width}x{img.Height}; width and height must be multiples of {multiple} (crop or resize it first).");
            expected ??= (img.Width, img.Height);
            if ((img.Width, img.Height) != expected.Value)
                throw new ArgumentException($"{f}: image is {img.Width}x{img.Height} but earlier images are {expected.Value.Width}x{expected.Value.Height}; one run encodes one size.");
            images.Add(img);
        }
        int w = expected!.Value.Width, h = expected.Value.Height;
        var bytes = new byte[(long)images.Count * w * h * 3];
        for (int i = 0; i < images.Count; i++)
            images[i].Pixels.CopyTo(bytes, (long)i * w * h * 3);
        return tensor(bytes, [images.Count, h, w, 3], ScalarType.Byte);
    }

    /// <summary>Writes uint8 N x H x W x 3 pixels as PNG files.</summary>
    public static void WritePngs(Tensor pixels, IReadOnlyList<string> paths)
    {
        using var cpu = pixels.cpu().contiguous();
        int n = (int)cpu.shape[0], h = (int)cpu.shape[1], w = (int)cpu.shape[2];
        var all = cpu.bytes.ToArray();
        int size = w * h * 3;
        for (int i = 0; i < n; i++)
            ImageFile.WritePng(paths[i], new RgbImage(w, h, all.AsSpan(i * size, size).ToArray()));
    }
}
