using System.Formats.Tar;
using System.Text;
using SkiaSharp;

namespace LiteVae.Data.Tests.Support;

/// <summary>Builds small images and tar shards for tests (tar via System.Formats.Tar, or raw bytes for names it cannot write).</summary>
public static class ShardBuilder
{
    /// <summary>A JPEG whose content depends on <paramref name="seed"/> (smooth gradient plus noise, like a photo).</summary>
    public static byte[] Jpeg(int width, int height, int seed, int quality = 90) => Encode(width, height, seed, SKEncodedImageFormat.Jpeg, quality);

    public static byte[] Png(int width, int height, int seed) => Encode(width, height, seed, SKEncodedImageFormat.Png, 100);

    private static byte[] Encode(int width, int height, int seed, SKEncodedImageFormat format, int quality)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rng = new Random(seed);
        int r0 = rng.Next(256), g0 = rng.Next(256), b0 = rng.Next(256);
        var px = bitmap.GetPixelSpan();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 4;
                px[i] = (byte)((r0 + x * 3 + rng.Next(8)) & 255);
                px[i + 1] = (byte)((g0 + y * 2 + rng.Next(8)) & 255);
                px[i + 2] = (byte)((b0 + (x + y) + rng.Next(8)) & 255);
                px[i + 3] = 255;
            }
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>A tar archive written by .NET's TarWriter.</summary>
    public static byte[] Tar(IEnumerable<(string Name, byte[] Data)> entries, TarEntryFormat format = TarEntryFormat.Ustar)
    {
        using var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, format, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                TarEntry entry = format switch
                {
                    TarEntryFormat.V7 => new V7TarEntry(TarEntryType.V7RegularFile, name),
                    TarEntryFormat.Ustar => new UstarTarEntry(TarEntryType.RegularFile, name),
                    TarEntryFormat.Pax => new PaxTarEntry(TarEntryType.RegularFile, name),
                    _ => new GnuTarEntry(TarEntryType.RegularFile, name),
                };
                entry.DataStream = new MemoryStream(data);
                entry.ModificationTime = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
                writer.WriteEntry(entry);
            }
        }
        return ms.ToArray();
    }

    /// <summary>Entries of a WebDataset sample: key.jpg plus optional key.cls.</summary>
    public static IEnumerable<(string, byte[])> Sample(string key, byte[] image, string ext = "jpg", int? cls = null)
    {
        yield return ($"{key}.{ext}", image);
        if (cls is int c) yield return ($"{key}.cls", Encoding.ASCII.GetBytes(c.ToString()));
    }

    /// <summary>One ustar entry from raw name bytes (for names that are not UTF-8), written by hand.</summary>
    public static byte[] RawUstarEntry(byte[] name, byte[] data)
    {
        var header = new byte[512];
        name.CopyTo(header, 0);
        WriteOctal(header, 100, 8, 0b110_100_100);
        WriteOctal(header, 108, 8, 0);
        WriteOctal(header, 116, 8, 0);
        WriteOctal(header, 124, 12, data.Length);
        WriteOctal(header, 136, 12, 0);
        header[156] = (byte)'0';
        Encoding.ASCII.GetBytes("ustar\0").CopyTo(header, 257);
        header[263] = (byte)'0';
        header[264] = (byte)'0';
        for (int i = 148; i < 156; i++) header[i] = (byte)' ';
        int sum = header.Sum(b => b);
        WriteOctal(header, 148, 7, sum);
        header[155] = (byte)' ';
        int padded = (data.Length + 511) / 512 * 512;
        var result = new byte[512 + padded];
        header.CopyTo(result, 0);
        data.CopyTo(result, 512);
        return result;
    }

    private static void WriteOctal(byte[] h, int offset, int width, long value)
    {
        string s = Convert.ToString(value, 8).PadLeft(width - 1, '0');
        Encoding.ASCII.GetBytes(s).CopyTo(h, offset);
        h[offset + width - 1] = 0;
    }

    /// <summary>Writes a shard with <paramref name="count"/> JPEG samples (keys prefix-0000..), returns the keys.</summary>
    public static IReadOnlyList<string> WriteJpegShard(string path, string prefix, int count, int width = 40, int height = 32, int seedBase = 0)
    {
        var keys = new List<string>();
        var entries = new List<(string, byte[])>();
        for (int i = 0; i < count; i++)
        {
            string key = $"{prefix}-{i:D4}";
            keys.Add(key);
            entries.AddRange(Sample(key, Jpeg(width + i % 5, height + i % 3, seedBase + i), cls: i % 7));
        }
        File.WriteAllBytes(path, Tar(entries));
        return keys;
    }
}
