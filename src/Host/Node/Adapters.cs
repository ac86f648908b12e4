using System.Globalization;
using System.Text.RegularExpressions;
using LiteVae.Actors.Coordination;
using LiteVae.Host.Config;

namespace LiteVae.Host.Node;

/// <summary>
/// Adapters from the actors' interfaces (ITrainingEngine, ICheckpointStore, IShardReader/ISampleDecoder,
/// IEvalJob) to the trainer, checkpoint store, data pipeline and metrics. They are written against the
/// training and data code once those are on main; until then the node and train verbs are not registered
/// (CommandCatalog) and nothing reaches <see cref="Create"/>.
/// </summary>
internal static partial class Adapters
{
    public static NodeServices Create(NodeOptions node, Func<RunPlan>? plan, NodeExtras extras) =>
        throw new ConfigException("this build has no trainer/data adapters yet (they land with the training and data merges).");

    /// <summary>Shard list: a file, a folder of .tar files, or a brace pattern train-{000000..000127}.tar.</summary>
    public static IReadOnlyList<string> ExpandShards(string spec, string what)
    {
        var m = BracePattern().Match(spec);
        List<string> paths;
        if (m.Success)
        {
            string lo = m.Groups["lo"].Value, hi = m.Groups["hi"].Value;
            long a = long.Parse(lo, CultureInfo.InvariantCulture), b = long.Parse(hi, CultureInfo.InvariantCulture);
            if (b < a) throw new ConfigException($"{what}: '{spec}' counts down ({lo}..{hi}).");
            paths = [];
            for (long i = a; i <= b; i++)
                paths.Add(spec[..m.Index] + i.ToString(CultureInfo.InvariantCulture).PadLeft(lo.Length, '0') + spec[(m.Index + m.Length)..]);
        }
        else if (Directory.Exists(spec))
            paths = Directory.GetFiles(spec, "*.tar").Order(StringComparer.Ordinal).ToList();
        else
            paths = [spec];
        if (paths.Count == 0) throw new ConfigException($"{what}: no .tar shards in '{spec}'.");
        var missing = paths.Where(p => !p.Contains("://", StringComparison.Ordinal) && !File.Exists(p)).Take(3).ToList();
        if (missing.Count > 0)
            throw new ConfigException($"{what}: shard(s) not found: {string.Join(", ", missing)} (paths are relative to {Directory.GetCurrentDirectory()}).");
        return paths;
    }

    [GeneratedRegex(@"\{(?<lo>\d+)\.\.(?<hi>\d+)\}")]
    private static partial Regex BracePattern();
}
