using System.CommandLine;
using LiteVae.Host.Config;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using static TorchSharp.torch;

namespace LiteVae.Host.Commands;

/// <summary>
/// `litevae convert IN OUT`: open-litevae / PyTorch Lightning checkpoints to our safetensors and back. The
/// direction comes from the names: a .ckpt/.pt/.pth IN and a .safetensors OUT imports; a .safetensors file or
/// a checkpoint directory IN and a .ckpt OUT exports. Keys map 1:1 (spec 11.3).
/// </summary>
internal static class ConvertCommand
{
    private static readonly string[] TorchExtensions = [".ckpt", ".pt", ".pth"];
    // The files of a training checkpoint (LiteVaeTrainer.Snapshot).
    private const string ModelFile = "model.safetensors";
    private const string DiscriminatorFile = "discriminator.safetensors";
    private const string EmaFile = "ema.safetensors";

    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "A Lightning .ckpt (or a torch.save'd state dict) to import; or a .safetensors weights file or a checkpoint directory to export." };
        var output = new Argument<string>("output") { Description = "The .safetensors file (import) or .ckpt file (export) to write." };
        var model = new Option<string?>("--model")
        {
            Description = "Model config (HOCON) the weights are checked against and that the output carries. Needed to import a .ckpt " +
                          "not written by LiteVae; otherwise the input's own config is used. If both are there, --model wins.",
        };
        var onlyModel = new Option<bool>("--only-model") { Description = "Import: keep only encoder.*, decoder.* and quantizer.* (drop loss.*, EMA and anything else)." };
        var force = new Option<bool>("--force") { Description = "Overwrite the output if it exists." };
        var command = new Command("convert",
            "Convert between open-litevae (PyTorch Lightning) checkpoints and LiteVae safetensors, without executing pickle code.\n" +
            "  import: litevae convert last.ckpt weights.safetensors --model configs/model/litevae-b-f8c12.conf\n" +
            "    reads only the .ckpt's state_dict (optimizer states, hyper-parameters and other entries are skipped, whatever\n" +
            "    objects they hold) and writes every tensor under its own key, dtype kept, with the model config in the metadata.\n" +
            "  export: litevae convert runs/<run>/checkpoints/step-N out.ckpt   (or weights.safetensors out.ckpt)\n" +
            "    writes a Lightning-style .ckpt that torch.load(path, weights_only=True) reads: state_dict (encoder.*, decoder.*,\n" +
            "    quantizer.*, the discriminator as loss.discriminator.*, EMA weights as encoder_ema./decoder_ema.<name without dots>),\n" +
            "    global_step, epoch 0, pytorch-lightning_version 1.9.0, and litevae.model (the config JSON).\n" +
            "  The encoder.*/decoder.* keys present are checked strictly against the model config (a half may be absent).");
        command.Arguments.Add(input);
        command.Arguments.Add(output);
        command.Options.Add(model);
        command.Options.Add(onlyModel);
        command.Options.Add(force);
        Cli.SetAction(command, parse =>
        {
            string src = parse.GetValue(input)!, dst = parse.GetValue(output)!;
            if (File.Exists(dst) && !parse.GetValue(force))
                throw new IOException($"{dst} already exists; pass --force to overwrite it.");
            bool torchIn = TorchExtensions.Contains(Path.GetExtension(src).ToLowerInvariant());
            if (torchIn && dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                return Import(src, dst, parse.GetValue(model), parse.GetValue(onlyModel));
            if (!torchIn && dst.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase))
                return Export(src, dst, parse.GetValue(model));
            throw new ArgumentException($"convert {src} {dst}: import a .ckpt/.pt/.pth into a .safetensors file, or export a .safetensors file " +
                                        "or a checkpoint directory to a .ckpt file; the names decide the direction.");
        });
        return command;
    }

    private static int Import(string src, string dst, string? modelConf, bool onlyModel)
    {
        using var ckpt = LightningCheckpoint.Read(src);
        string json = modelConf is not null ? ModelConfigJson.Write(ModelConfigBinder.Bind(HoconFile.Load(modelConf)))
            : ckpt.ModelJson ?? throw new ArgumentException($"{src}: a checkpoint not written by LiteVae carries no model config we can read; " +
                                                            "pass --model <config> (e.g. configs/model/litevae-b-f8c12.conf) describing it.");
        CheckModelKeys(json, modelConf ?? $"{src} ({ModelConfigJson.MetadataKey})", ckpt.StateDict, src);
        var kept = ckpt.StateDict.Where(kv => !onlyModel || ModelPart.Both.Owns(kv.Key)).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [ModelConfigJson.MetadataKey] = json,
            ["litevae.step"] = (ckpt.GlobalStep ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["converted_from"] = Path.GetFileName(src),
        };
        WriteAtomically(dst, temp => Safetensors.Save(temp, kept, metadata));
        Console.WriteLine($"wrote {dst}: {Describe(kept.Select(kv => kv.Key))} (global_step {ckpt.GlobalStep?.ToString() ?? "absent"}, " +
                          $"epoch {ckpt.Epoch?.ToString() ?? "absent"}, Lightning {ckpt.LightningVersion ?? "unknown"}).");
        if (ckpt.OtherEntries.Count > 0)
            Console.WriteLine($"not read (not weights): {string.Join(", ", ckpt.OtherEntries)}.");
        if (onlyModel && kept.Count < ckpt.StateDict.Count)
            Console.WriteLine($"dropped by --only-model: {Describe(ckpt.StateDict.Keys.Where(k => !ModelPart.Both.Owns(k)))}.");
        if (kept.Any(kv => IsEma(kv.Key)))
            Console.WriteLine("EMA tensors (*_ema.*) are kept under their reference names; LiteVae's loaders use encoder.*/decoder.* only.");
        return 0;
    }

    private static int Export(string src, string dst, string? modelConf)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            long step;
            string? json;
            int emaSkipped = 0;
            if (Directory.Exists(src))
            {
                var checkpoint = CheckpointDir.Open(src);
                step = checkpoint.State.Step;
                string modelFile = Path.Combine(checkpoint.Path, ModelFile);
                json = EmbeddedJson(modelFile);
                if (json is null && modelConf is null && checkpoint.ConfigText.Length > 0)
                    json = ModelConfigJson.Write(ModelConfigBinder.Bind(HoconFile.Parse(checkpoint.ConfigText, Path.Combine(checkpoint.Path, CheckpointStore.ConfigFile))));
                AddInFileOrder(tensors, modelFile, _ => true, k => k);
                if (checkpoint.Has(DiscriminatorFile))
                    AddInFileOrder(tensors, Path.Combine(checkpoint.Path, DiscriminatorFile), _ => true, k => k);
                if (checkpoint.Has(EmaFile))
                {
                    // The reference keeps EMA weights as LitEma buffers: the parameter name without dots under encoder_ema./decoder_ema.
                    string emaFile = Path.Combine(checkpoint.Path, EmaFile);
                    emaSkipped = Safetensors.ReadHeader(emaFile).Entries.Count(e => EmaName(e.Name) is null);
                    AddInFileOrder(tensors, emaFile, k => EmaName(k) is not null, k => EmaName(k)!);
                }
            }
            else
            {
                CheckpointGuard.RefuseUnsafeFormat(src);
                var header = Safetensors.ReadHeader(src);
                json = header.Metadata.GetValueOrDefault(ModelConfigJson.MetadataKey);
                step = header.Metadata.TryGetValue("litevae.step", out var s) && long.TryParse(s, out long parsed) ? parsed : 0;
                AddInFileOrder(tensors, src, _ => true, k => k);
            }
            if (modelConf is not null)
                json = ModelConfigJson.Write(ModelConfigBinder.Bind(HoconFile.Load(modelConf)));
            if (json is null)
                throw new ArgumentException($"{src}: carries no model config ({ModelConfigJson.MetadataKey}); pass --model <config> to check the weights and record it.");
            var byKey = tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
            CheckModelKeys(json, modelConf ?? $"{src} ({ModelConfigJson.MetadataKey})", byKey, src);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(dst))!);
            LightningCheckpoint.Write(dst, tensors, step, epoch: 0, json);
            Console.WriteLine($"wrote {dst}: {Describe(tensors.Select(kv => kv.Key))}, global_step {step}.");
            if (emaSkipped > 0)
                Console.WriteLine($"{emaSkipped} EMA tensor(s) of quantizer.* not exported: the reference keeps EMA only for the encoder and decoder.");
            return 0;
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }

    /// <summary>encoder.a.b → encoder_ema.ab (LitEma's buffer names); null for keys the reference has no EMA for.</summary>
    private static string? EmaName(string key)
    {
        foreach (var part in new[] { "encoder", "decoder" })
            if (key.StartsWith(part + ".", StringComparison.Ordinal))
                return part + "_ema." + key[(part.Length + 1)..].Replace(".", "", StringComparison.Ordinal);
        return null;
    }

    private static bool IsEma(string key) => key.StartsWith("encoder_ema.", StringComparison.Ordinal) || key.StartsWith("decoder_ema.", StringComparison.Ordinal);

    private static string? EmbeddedJson(string safetensorsPath) =>
        Safetensors.ReadHeader(safetensorsPath).Metadata.GetValueOrDefault(ModelConfigJson.MetadataKey);

    private static void AddInFileOrder(List<KeyValuePair<string, Tensor>> into, string path, Func<string, bool> keep, Func<string, string> rename)
    {
        var header = Safetensors.ReadHeader(path);
        var loaded = Safetensors.Load(path, keep);
        foreach (var e in header.Entries)
            if (loaded.Remove(e.Name, out var t))
            {
                string key = rename(e.Name);
                if (into.Any(kv => kv.Key == key))
                {
                    t.Dispose();
                    throw new InvalidDataException($"{path}: key '{key}' appears in two of the checkpoint's files.");
                }
                into.Add(new(key, t));
            }
    }

    /// <summary>
    /// The model keys present must be the config's, strictly, for each half that is there: a mis-shaped, missing or
    /// unknown encoder.*/decoder.* key is an error naming it. A file with neither half is not a LiteVAE checkpoint.
    /// </summary>
    private static void CheckModelKeys(string json, string configSource, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        bool encoder = tensors.Keys.Any(k => k.StartsWith("encoder.", StringComparison.Ordinal));
        bool decoder = tensors.Keys.Any(k => k.StartsWith("decoder.", StringComparison.Ordinal));
        if (!encoder && !decoder)
            throw new InvalidDataException($"{source}: no encoder.* or decoder.* tensors (keys start: {string.Join(", ", tensors.Keys.Take(5))}); " +
                                           "not a LiteVAE checkpoint under the reference key names.");
        var part = encoder && decoder ? ModelPart.Both : encoder ? ModelPart.Encoder : ModelPart.Decoder;
        using var model = new LiteAutoencoder(ModelConfigBinder.FromJson(json, configSource));
        try
        {
            StateDict.Load(model, tensors, source, strict: true, only: k => part.Owns(k));
        }
        catch (StateDictMismatchException e)
        {
            throw new InvalidDataException($"{e.Message} Checked against {configSource}: pass the --model the weights were trained with.", e);
        }
    }

    private static string Describe(IEnumerable<string> keys)
    {
        var groups = keys.GroupBy(k => k switch
        {
            _ when k.StartsWith("encoder_ema.", StringComparison.Ordinal) || k.StartsWith("decoder_ema.", StringComparison.Ordinal) => "EMA",
            _ when k.StartsWith("loss.", StringComparison.Ordinal) => "loss.*",
            _ => k.Split('.')[0] + ".*",
        }).Select(g => $"{g.Count()} {g.Key}");
        return string.Join(", ", groups);
    }

    private static void WriteAtomically(string path, Action<string> write)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
