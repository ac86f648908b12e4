using LiteVae.Host.Config;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Host.Inference;

/// <summary>
/// Builds the autoencoder a model config describes, loads its weights strictly and moves it to a device/dtype.
/// The config comes from --model or, when that is not given, from the weights file itself (metadata
/// <c>litevae.model</c>, which every file LiteVae writes carries).
/// </summary>
public static class ModelLoader
{
    /// <summary>Whether a weights-file key is one of the autoencoder's own tensors; other keys (a training
    /// checkpoint's loss.* discriminator, for example) are not part of the model and are ignored.</summary>
    public static bool OwnsKey(string key) => ModelPart.Both.Owns(key);

    /// <summary>The model config: <paramref name="modelConf"/> (HOCON) when given, else the one embedded in the weights file.</summary>
    public static AutoencoderConfig ResolveConfig(string? modelConf, string weightsPath)
    {
        if (modelConf is not null)
            return ModelConfigBinder.Bind(HoconFile.Load(modelConf));
        if (!File.Exists(weightsPath) && !Directory.Exists(weightsPath))
            throw new FileNotFoundException($"{weightsPath}: weights file not found.", weightsPath);
        CheckpointGuard.RefuseUnsafeFormat(weightsPath);
        var header = Safetensors.ReadHeader(weightsPath);
        if (!header.Metadata.TryGetValue(ModelConfigJson.MetadataKey, out var json))
            throw new ArgumentException($"{weightsPath}: carries no model config (no '{ModelConfigJson.MetadataKey}' metadata; files written " +
                "by other tools or older LiteVae versions lack it); pass --model <config>, e.g. --model configs/model/litevae-b-f8c12.conf.");
        return ModelConfigBinder.FromJson(json, $"{weightsPath} (metadata {ModelConfigJson.MetadataKey})");
    }

    public static LiteAutoencoder Load(string? modelConf, string weightsPath, Device device, ScalarType dtype, ModelPart part = ModelPart.Both)
    {
        var config = ResolveConfig(modelConf, weightsPath);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"{weightsPath}: weights file not found.", weightsPath);
        var model = new LiteAutoencoder(config);
        try
        {
            // Header checked against the part's state dict before any tensor is read; pickles refused. Keys of
            // the part that does not run are ignored, so an encoder-only file serves `encode`.
            try
            {
                CheckpointGuard.LoadInto(model, weightsPath, owns: key => part.Owns(key));
            }
            catch (CheckpointRefusedException e) when (e.Reason == RefusalReason.OtherModel && part != ModelPart.Both)
            {
                throw new CheckpointRefusedException($"{e.Message} This command needs {part.Describe()}; the other half's keys may be absent.", e.Reason);
            }
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
