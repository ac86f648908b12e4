using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model;

/// <summary>Parses --device (auto | cpu | cuda | cuda:N) and --precision (fp32 | bf16).</summary>
public static class DeviceChoice
{
    public static Device Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "auto") return cuda.is_available() ? CUDA : CPU;
        if (t == "cuda" || t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (t.Length > 5 && (!int.TryParse(t[5..], out index) || index < 0))
                throw new ArgumentException($"--device '{text}': expected cuda:N with N a GPU index, e.g. cuda:0.");
            if (!cuda.is_available())
                throw new ArgumentException($"--device {text}: CUDA is not available to this process (use --device cpu, or run the GPU build; see README).");
            if (index >= cuda.device_count())
                throw new ArgumentException($"--device {text}: only {cuda.device_count()} GPU(s) are visible.");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"--device '{text}': use auto, cpu, cuda or cuda:N.");
    }

    public static ScalarType ParsePrecision(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"--precision '{text}': use fp32 or bf16."),
    };
}
