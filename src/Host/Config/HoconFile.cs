using Akka.Configuration;

namespace LiteVae.Host.Config;

/// <summary>A configuration problem a user can fix: names the file and key and says what to do.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// A parsed HOCON document with typed, validating getters. Every error names the source file and the
/// full key. Overrides (<c>--set a.b=c</c>) are applied here, in C#, because Akka's HOCON parser does
/// not read environment variables.
/// </summary>
public sealed class HoconFile
{
    private readonly Akka.Configuration.Config _config;

    public string Source { get; }

    private HoconFile(Akka.Configuration.Config config, string source)
    {
        _config = config;
        Source = source;
    }

    public static HoconFile Load(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path))
            throw new ConfigException($"{path}: config file not found.");
        return Parse(File.ReadAllText(path), path, overrides, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <param name="includeRoot">Folder that relative <c>include "x.conf"</c> lines resolve against.</param>
    public static HoconFile Parse(string text, string source, IEnumerable<string>? overrides = null, string? includeRoot = null)
    {
        Akka.Configuration.Config config;
        try
        {
            config = ConfigurationFactory.ParseString(text, name => IncludeFile(name, includeRoot, source));
        }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException($"{source}: not valid HOCON: {e.Message}");
        }
        return new HoconFile(WithOverrides(config, overrides), source);
    }

    /// <summary>Several files layered in order (later files win), e.g. a role preset then hocon/tls.conf.</summary>
    public static HoconFile Load(IReadOnlyList<string> paths, IEnumerable<string>? overrides = null)
    {
        if (paths.Count == 0) throw new ConfigException("no HOCON file given.");
        if (paths.Count == 1) return Load(paths[0], overrides);
        Akka.Configuration.Config? merged = null;
        foreach (var path in paths)
        {
            var file = Load(path);
            merged = merged is null ? file._config : file._config.WithFallback(merged);
        }
        return new HoconFile(WithOverrides(merged!, overrides), string.Join(" + ", paths));
    }

    private static Akka.Configuration.Config WithOverrides(Akka.Configuration.Config config, IEnumerable<string>? overrides)
    {
        foreach (var o in overrides ?? [])
        {
            int eq = o.IndexOf('=');
            if (eq <= 0)
                throw new ConfigException($"override '{o}': expected key=value, e.g. trainer.max-steps=1000.");
            string key = o[..eq].Trim(), value = o[(eq + 1)..].Trim();
            Akka.Configuration.Config patch;
            try { patch = ConfigurationFactory.ParseString($"{key} = {value}"); }
            catch (Exception e) { throw new ConfigException($"override '{o}': {e.Message}"); }
            config = patch.WithFallback(config);
        }
        return config;
    }

    private static Akka.Configuration.Hocon.HoconRoot IncludeFile(string name, string? root, string source)
    {
        string path = Path.IsPathRooted(name) || root is null ? name : Path.Combine(root, name);
        if (!File.Exists(path))
            throw new ConfigException($"{source}: include \"{name}\" not found (looked at {path}).");
        return Akka.Configuration.Hocon.Parser.Parse(File.ReadAllText(path), n => IncludeFile(n, Path.GetDirectoryName(path), path));
    }

    public Akka.Configuration.Config Raw => _config;

    public bool Has(string key) => _config.HasPath(key);

    /// <summary>
    /// Refuses any key of this section that is not <paramref name="known"/> (a typo must not be silently ignored):
    /// the message names the file and the key (with <paramref name="prefix"/>), suggests the closest known key, and
    /// for a key in <paramref name="retired"/> says why it is gone instead.
    /// </summary>
    public void RejectUnknown(IReadOnlyCollection<string> known, string prefix = "", IReadOnlyDictionary<string, string>? retired = null)
    {
        foreach (var key in _config.Root.GetObject().Items.Keys)
        {
            if (known.Contains(key)) continue;
            if (retired?.GetValueOrDefault(key) is { } why)
                throw new ConfigException($"{Source}: key '{prefix}{key}' no longer exists: {why}");
            string? hint = known.OrderBy(k => Distance(k, key)).FirstOrDefault(k => Distance(k, key) <= 3);
            throw new ConfigException($"{Source}: unknown key '{prefix}{key}'" + (hint is null ? "" : $" (did you mean '{prefix}{hint}'?)") +
                                      $". Known keys: {string.Join(", ", known)}.");
        }
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    public HoconFile Section(string key)
    {
        Require(key);
        return new HoconFile(_config.GetConfig(key), Source + "#" + key);
    }

    public string String(string key, string? fallback = null) =>
        Get(key, fallback is not null, fallback!, () => _config.GetString(key));

    public int Int(string key, int? fallback = null, int min = int.MinValue, int max = int.MaxValue)
    {
        int v = Get(key, fallback.HasValue, fallback.GetValueOrDefault(), () => _config.GetInt(key));
        if (v < min || v > max)
            throw new ConfigException($"{Source}: key '{key}' = {v} is out of range [{min}, {max}].");
        return v;
    }

    public long Long(string key, long? fallback = null, long min = long.MinValue) 
    {
        long v = Get(key, fallback.HasValue, fallback.GetValueOrDefault(), () => _config.GetLong(key));
        if (v < min)
            throw new ConfigException($"{Source}: key '{key}' = {v} must be at least {min}.");
        return v;
    }

    public double Double(string key, double? fallback = null, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        double v = Get(key, fallback.HasValue, fallback.GetValueOrDefault(), () => _config.GetDouble(key));
        if (double.IsNaN(v) || v < min || v > max)
            throw new ConfigException($"{Source}: key '{key}' = {v} is out of range [{min}, {max}].");
        return v;
    }

    public bool Bool(string key, bool? fallback = null) => Get(key, fallback.HasValue, fallback.GetValueOrDefault(), () => _config.GetBoolean(key));

    public IReadOnlyList<int> IntList(string key, IReadOnlyList<int>? fallback = null) =>
        Get(key, fallback is not null, fallback!, () => (IReadOnlyList<int>)_config.GetIntList(key).ToArray());

    public IReadOnlyList<string> StringList(string key, IReadOnlyList<string>? fallback = null) =>
        Get(key, fallback is not null, fallback!, () => (IReadOnlyList<string>)_config.GetStringList(key).ToArray());

    /// <summary>A string that must be one of <paramref name="allowed"/>.</summary>
    public string Choice(string key, string[] allowed, string? fallback = null)
    {
        string v = String(key, fallback);
        if (!allowed.Contains(v))
            throw new ConfigException($"{Source}: key '{key}' = '{v}' is not one of: {string.Join(", ", allowed)}.");
        return v;
    }

    private T Get<T>(string key, bool hasFallback, T fallback, Func<T> read)
    {
        if (!_config.HasPath(key))
        {
            if (hasFallback) return fallback;
            throw new ConfigException($"{Source}: required key '{key}' is missing.");
        }
        try
        {
            return read();
        }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException($"{Source}: key '{key}' has the wrong type (expected {Describe(typeof(T))}): {e.Message}");
        }
    }

    private void Require(string key)
    {
        if (!_config.HasPath(key))
            throw new ConfigException($"{Source}: required section '{key}' is missing.");
    }

    private static string Describe(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer"
        : t == typeof(double) ? "a number"
        : t == typeof(bool) ? "true or false"
        : t == typeof(string) ? "a string"
        : "a list";

    /// <summary>
    /// The resolved document as HOCON text that parses back to the same values (Akka's own ToString
    /// leaves strings such as <c>train-{000000..000003}.tar</c> unquoted, which re-parse as objects).
    /// </summary>
    public string Render()
    {
        var sb = new System.Text.StringBuilder();
        RenderObject(_config.Root.GetObject(), sb, 0);
        return sb.ToString();
    }

    private static void RenderObject(Akka.Configuration.Hocon.HoconObject obj, System.Text.StringBuilder sb, int indent)
    {
        foreach (var (key, value) in obj.Items)
        {
            sb.Append(' ', indent).Append(Quote(key)).Append(value.IsObject() ? " " : " = ");
            RenderValue(value, sb, indent);
            sb.Append('\n');
        }
    }

    private static void RenderValue(Akka.Configuration.Hocon.HoconValue value, System.Text.StringBuilder sb, int indent)
    {
        if (value.IsObject())
        {
            sb.Append("{\n");
            RenderObject(value.GetObject(), sb, indent + 2);
            sb.Append(' ', indent).Append('}');
        }
        else if (value.IsArray())
        {
            sb.Append('[');
            var items = value.GetArray();
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0) sb.Append(", ");
                RenderValue(items[i], sb, indent);
            }
            sb.Append(']');
        }
        else
            sb.Append(Quote(value.GetString() ?? "null"));
    }

    /// <summary>Bare words stay bare (numbers, booleans, simple keys); anything else is a JSON string.</summary>
    private static string Quote(string text) =>
        text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.') && !text.StartsWith('.') && !text.EndsWith('.')
            ? text
            : System.Text.Json.JsonSerializer.Serialize(text);
}
