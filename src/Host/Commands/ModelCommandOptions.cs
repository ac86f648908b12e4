using LiteVae.Model;
using System.CommandLine;
using LiteVae.Host.Inference;
using LiteVae.Model.Checkpoints;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>Options shared by encode, decode and reconstruct.</summary>
internal sealed class ModelCommandOptions
{
    public Option<string?> Model { get; } = new("--model")
    {
        Description = "Model config (HOCON), e.g. configs/model/litevae-b-f8c12.conf. Optional for files LiteVae wrote (checkpoints, " +
                      "convert, latent-stats): they carry their config (metadata litevae.model). If both are there, --model wins.",
    };

    public Option<string> Weights { get; } = new("--weights")
    {
        Description = "Weights (.safetensors) under the reference key names encoder.*, decoder.* (and quantizer.* with use_quant). " +
                      "The part the command runs is loaded strictly (encode: encoder.* + quantizer.quant_conv.*; decode: decoder.* + " +
                      "quantizer.post_quant_conv.*; reconstruct: both); other keys, such as a training checkpoint's loss.*, are ignored.",
        Required = true,
    };

    public Option<string> Device { get; } = new("--device")
    {
        Description = "auto (CUDA if available), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };

    public Option<string> Precision { get; } = new("--precision")
    {
        Description = "fp32 or bf16 (the whole model in bfloat16; the wavelet transform still runs in fp32).",
        DefaultValueFactory = _ => "fp32",
    };

    public Option<int> Batch { get; } = new("--batch")
    {
        Description = "Images (or latents) per forward pass.",
        DefaultValueFactory = _ => 8,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(Weights);
        command.Options.Add(Device);
        command.Options.Add(Precision);
        command.Options.Add(Batch);
    }

    public int BatchSize(ParseResult parse)
    {
        int batch = parse.GetValue(Batch);
        if (batch < 1) throw new ArgumentException($"--batch {batch}: must be at least 1.");
        return batch;
    }

    public Model.LiteAutoencoder LoadModel(ParseResult parse, ModelPart part, out Device device, out ScalarType dtype)
    {
        device = DeviceChoice.Parse(parse.GetValue(Device)!);
        dtype = DeviceChoice.ParsePrecision(parse.GetValue(Precision)!);
        return ModelLoader.Load(parse.GetValue(Model), parse.GetValue(Weights)!, device, dtype, part);
    }

    /// <summary>Where the model config came from, for output metadata: the --model path, or the weights file.</summary>
    public string ModelSource(ParseResult parse) => parse.GetValue(Model) ?? $"embedded in {parse.GetValue(Weights)}";
}
