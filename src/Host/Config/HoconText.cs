using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Configuration.Hocon;

namespace LiteVae.Host.Config;

/// <summary>
/// Writes a parsed HOCON tree back as text that parses to the same tree: JSON syntax (HOCON is a
/// superset), every string quoted and escaped. Akka's own ToString leaves strings unquoted, which
/// breaks values such as "train-{000000..000003}.tar" on re-reading. Used for the resolved config
/// stored in each run directory and checkpoint.
/// </summary>
public static class HoconText
{
    public static string Render(Akka.Configuration.Config config)
    {
        var sb = new StringBuilder();
        WriteObject(sb, config.Root.GetObject(), 0);
        sb.AppendLine();
        return sb.ToString();
    }

    private static void WriteObject(StringBuilder sb, HoconObject obj, int indent)
    {
        sb.Append('{').AppendLine();
        foreach (var (key, value) in obj.Items)
        {
            sb.Append(' ', indent + 2).Append(JsonSerializer.Serialize(key)).Append(" : ");
            WriteValue(sb, value, indent + 2);
            sb.AppendLine();
        }
        sb.Append(' ', indent).Append('}');
    }

    private static void WriteValue(StringBuilder sb, HoconValue value, int indent)
    {
        if (value.IsObject())
            WriteObject(sb, value.GetObject(), indent);
        else if (value.IsArray())
        {
            sb.Append('[');
            var items = value.GetArray();
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0) sb.Append(", ");
                WriteValue(sb, items[i], indent);
            }
            sb.Append(']');
        }
        else
        {
            string? s = value.GetString();
            sb.Append(s is null ? "null" : IsBareLiteral(s) ? s : JsonSerializer.Serialize(s));
        }
    }

    /// <summary>Numbers and booleans are written bare so they keep their type.</summary>
    private static bool IsBareLiteral(string s) =>
        s is "true" or "false" || (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _) && !s.Contains(' ') && s.Trim() == s
            && !s.StartsWith('+') && !s.EndsWith('.') && s != "Infinity" && s != "NaN");
}
