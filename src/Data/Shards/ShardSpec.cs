using System.Text;
using System.Text.RegularExpressions;

namespace LiteVae.Data.Shards;

/// <summary>
/// Turns source specifications into shards. A specification is a tar file, an http(s) URL, a brace
/// pattern of either (<c>train-{000000..000127}.tar</c>, <c>{a,b}.tar</c>), a wildcard file pattern
/// (<c>shards/*.tar</c>), or a folder: a folder holding .tar files means those shards; otherwise its
/// images (recursively) are the data, cut into slices of <c>folderShardSize</c> images.
/// Tar paths that do not exist are kept: they are reported and skipped when read, so one missing
/// shard never stops a run.
/// </summary>
public static partial class ShardSpec
{
    public static IReadOnlyList<ShardSource> Resolve(IEnumerable<string> specs, int folderShardSize = 1000)
    {
        if (folderShardSize < 1) throw new ArgumentOutOfRangeException(nameof(folderShardSize), "folder-shard-size must be at least 1.");
        var shards = new List<ShardSource>();
        foreach (string spec in specs)
        {
            if (string.IsNullOrWhiteSpace(spec))
                throw new ArgumentException("an empty source entry was given.");
            foreach (string item in ExpandBraces(spec.Trim()))
            {
                if (TarShard.IsHttp(item))
                {
                    shards.Add(new TarShard(item));
                    continue;
                }
                string name = Path.GetFileName(item);
                if (name.IndexOfAny(['*', '?']) >= 0)
                {
                    string dir = Path.GetDirectoryName(item) is { Length: > 0 } d ? d : ".";
                    var matches = Directory.Exists(dir)
                        ? Directory.GetFiles(dir, name).Order(StringComparer.Ordinal).ToArray()
                        : [];
                    if (matches.Length == 0)
                        throw new ArgumentException($"source '{item}' matches no files.");
                    shards.AddRange(matches.Select(m => new TarShard(m)));
                }
                else if (Directory.Exists(item))
                {
                    shards.AddRange(FromFolder(item, folderShardSize));
                }
                else
                {
                    shards.Add(new TarShard(item));
                }
            }
        }
        if (shards.Count == 0)
            throw new ArgumentException("the data source lists no shards.");
        return shards;
    }

    private static IEnumerable<ShardSource> FromFolder(string folder, int folderShardSize)
    {
        var tars = Directory.GetFiles(folder, "*.tar").Order(StringComparer.Ordinal).ToArray();
        if (tars.Length > 0)
            return tars.Select(t => new TarShard(t));
        var samples = ImageFolder.List(folder);
        if (samples.Count == 0)
            throw new ArgumentException($"folder '{folder}' has no .tar shards and no images (jpg, jpeg, png, webp).");
        return samples.Chunk(folderShardSize).Select((chunk, i) => (ShardSource)new FolderShard(folder, i, chunk));
    }

    /// <summary>
    /// Expands <c>{a..b}</c> numeric ranges (zero-padded to the longer bound when either bound has a
    /// leading zero) and <c>{x,y,z}</c> lists, left to right, like the braceexpand package WebDataset uses.
    /// </summary>
    public static IReadOnlyList<string> ExpandBraces(string pattern)
    {
        int open = pattern.IndexOf('{');
        if (open < 0)
        {
            if (pattern.Contains('}')) throw new ArgumentException($"source '{pattern}' has a '}}' without '{{'.");
            return [pattern];
        }
        int close = pattern.IndexOf('}', open);
        if (close < 0) throw new ArgumentException($"source '{pattern}' has a '{{' without '}}'.");
        string body = pattern[(open + 1)..close];
        if (body.Contains('{')) throw new ArgumentException($"source '{pattern}': nested braces are not supported.");
        string head = pattern[..open], tail = pattern[(close + 1)..];
        var alternatives = Alternatives(body, pattern);
        var tails = ExpandBraces(tail);
        var result = new List<string>(alternatives.Count * tails.Count);
        foreach (var a in alternatives)
            foreach (var t in tails)
                result.Add(head + a + t);
        return result;
    }

    private static List<string> Alternatives(string body, string pattern)
    {
        var range = RangePattern().Match(body);
        if (range.Success)
        {
            string a = range.Groups[1].Value, b = range.Groups[2].Value;
            if (!long.TryParse(a, out long from) || !long.TryParse(b, out long to))
                throw new ArgumentException($"source '{pattern}': range {{{body}}} is too large.");
            if (to < from) throw new ArgumentException($"source '{pattern}': range {{{body}}} counts down; write it as {{{b}..{a}}}.");
            if (to - from > 10_000_000) throw new ArgumentException($"source '{pattern}': range {{{body}}} has too many items.");
            bool pad = (a.Length > 1 && a[0] == '0') || (b.Length > 1 && b[0] == '0');
            int width = pad ? Math.Max(a.Length, b.Length) : 0;
            var items = new List<string>((int)(to - from + 1));
            for (long i = from; i <= to; i++) items.Add(i.ToString(CultureFormat).PadLeft(width, '0'));
            return items;
        }
        if (body.Contains(',')) return body.Split(',').ToList();
        throw new ArgumentException($"source '{pattern}': {{{body}}} is neither a range like {{000..127}} nor a list like {{a,b}}.");
    }

    private static readonly IFormatProvider CultureFormat = System.Globalization.CultureInfo.InvariantCulture;

    [GeneratedRegex(@"^(\d+)\.\.(\d+)$")]
    private static partial Regex RangePattern();

    /// <summary>A short hash of the shard names, in order (part of the data-order fingerprint).</summary>
    public static string NamesHash(IEnumerable<ShardSource> shards)
    {
        var sb = new StringBuilder();
        foreach (var s in shards) sb.Append(s.Name).Append('\n');
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }
}
