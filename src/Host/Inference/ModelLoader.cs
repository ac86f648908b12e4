using LiteVae.Host.Config;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Host.Inference;

/// <summary>Builds the autoencoder a model config describes, loads its weights strictly and moves it to a device/dtype.</summary>
public static class ModelLoader
{
    private static readonly string[] ModelPrefixes = ["encoder.", "decoder.", "quantizer."];

    /// <summary>Whether a weights-file key is one of the autoencoder's own tensors; other keys (a training
    /// checkpoint's loss.* discriminator, for example) are not part of the model and are ignored.</summary>
    public static bool OwnsKey(string key) => ModelPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    public static LiteAutoencoder Load(string modelConf, string weightsPath, Device device, ScalarType dtype)
    {
        var config = ModelConfigBinder.Bind(HoconFile.Load(modelConf));
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"{weightsPath}: weights file not found.", weightsPath);
        var model = new LiteAutoencoder(config);
        try
        {
            // Header checked against the model's state dict before any tensor is read; pickles refused.
            CheckpointGuard.LoadInto(model, weightsPath, owns: OwnsKey);
            return Place(model, device, dtype);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>A loaded model made ready for inference: eval mode, then <paramref name="dtype"/> and <paramref name="device"/>.</summary>
    public static LiteAutoencoder Place(LiteAutoencoder model, Device device, ScalarType dtype)
    {
        model.eval();
        if (dtype != ScalarType.Float32) model.to(dtype);
        if (device.type != DeviceType.CPU) model.to(device);
        return model;
    }
}
