namespace LiteVae.Model.Configs;

/// <summary>
/// An invalid model configuration value. <see cref="Key"/> is the key under the config's `model`
/// section (e.g. "encoder.extractor_mult"), so a file binder can name the full key and the file.
/// </summary>
public sealed class ModelConfigException(string key, string problem) : ArgumentException($"{key}: {problem}.")
{
    public string Key { get; } = key;
    public string Problem { get; } = problem;
}
