using LiteVae.Model.Checkpoints;
using LiteVae.Model.Configs;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

/// <summary>
/// Resume (<see cref="LiteVaeTrainer.Restore"/>, also what evaluation jobs use) and --init-from load only
/// through <see cref="CheckpointGuard"/>: a checkpoint that does not match the model, a tampered header
/// or a pickle is refused with a clear message before anything is loaded, and the trainer is untouched.
/// </summary>
public sealed class CheckpointGuardResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("litevae-guard-resume-").FullName;

    private static AutoencoderConfig Tiny(int decoderChannels = 8) => new(
        4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(decoderChannels, 4, 3, [1, 1, 2, 2], 0, 0.0));

    private static LiteVaeTrainer Trainer(int decoderChannels = 8) =>
        new(new LiteAutoencoder(Tiny(decoderChannels)), null, null, new LossConfig(),
            new TrainerOptions { Seed = 1, Ema = true, MicroBatches = 1, Adam = new AdamOptions(Lr: 1e-3) }, CPU);

    /// <summary>A complete checkpoint of a trainer with <paramref name="decoderChannels"/>; returns its directory.</summary>
    private string Checkpoint(int decoderChannels = 8)
    {
        using var t = Trainer(decoderChannels);
        using var snap = t.Snapshot("cfg", null, null);
        return CheckpointStore.Write(Path.Combine(_dir, $"c{decoderChannels}", "checkpoints"), snap, new RetentionPolicy());
    }

    private static float[] Weights(LiteVaeTrainer t)
    {
        using var s = t.Snapshot("", null, null);
        return s.Files[0].Tensors.SelectMany(kv => kv.Value.to_type(ScalarType.Float32).contiguous().data<float>().ToArray()).ToArray();
    }

    [Fact]
    public void A_checkpoint_of_another_model_config_is_refused_before_loading()
    {
        string other = Checkpoint(decoderChannels: 16);
        using var t = Trainer();
        var before = Weights(t);
        var e = Assert.Throws<CheckpointRefusedException>(() => t.Restore(CheckpointDir.Open(other)));
        Assert.Contains("model.safetensors: does not match the model configuration, nothing was loaded", e.Message);
        Assert.Contains("has shape [", e.Message);
        Assert.Contains("the model needs [", e.Message);
        Assert.Equal(before, Weights(t));
        var init = Assert.Throws<CheckpointRefusedException>(() => t.InitFrom(other));
        Assert.Contains("nothing was loaded", init.Message);
        Assert.Equal(before, Weights(t));
    }

    /// <summary>Rewrites one Adam moment's shape in optimizer.safetensors (data untouched, the checkpoint's
    /// recorded file size fixed up as a careful attacker would); returns the tensor's name and element count.</summary>
    private static (string Name, long Numel) ForgeShape(string ck, Func<long, string> shape)
    {
        string opt = Path.Combine(ck, "optimizer.safetensors");
        var victim = Safetensors.ReadHeader(opt).Entries.First(x => x.Name.StartsWith("generator.exp_avg.", StringComparison.Ordinal));
        long numel = (victim.End - victim.Begin) / 4;
        byte[] bytes = File.ReadAllBytes(opt);
        int headerLength = checked((int)BitConverter.ToUInt64(bytes, 0));
        string json = System.Text.Encoding.UTF8.GetString(bytes, 8, headerLength);
        int at = json.IndexOf($"\"{victim.Name}\"", StringComparison.Ordinal);
        int shapeStart = json.IndexOf("\"shape\":[", at, StringComparison.Ordinal) + 9;
        int shapeEnd = json.IndexOf(']', shapeStart);
        var forged = System.Text.Encoding.UTF8.GetBytes(json[..shapeStart] + shape(numel) + json[shapeEnd..]);
        using (var f = File.Create(opt))
        {
            f.Write(BitConverter.GetBytes((ulong)forged.Length));
            f.Write(forged);
            f.Write(bytes, 8 + headerLength, bytes.Length - 8 - headerLength);
        }
        string statePath = Path.Combine(ck, CheckpointStore.StateFile);
        File.WriteAllText(statePath, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(statePath),
            "(\"optimizer\\.safetensors\"\\s*:\\s*)\\d+", m => m.Groups[1].Value + new FileInfo(opt).Length));
        return (victim.Name, numel);
    }

    [Fact]
    public void A_tampered_optimizer_header_is_refused_before_any_tensor_is_allocated()
    {
        // A shape of 2^40 elements (a 4 TiB allocation if trusted): the safetensors header check refuses it on opening.
        string huge = Checkpoint();
        ForgeShape(huge, _ => "1099511627776");
        Assert.Contains("does not fit its shape or the file", Assert.Throws<InvalidDataException>(() => CheckpointDir.Open(huge)).Message);

        // A self-consistent header whose shape is not the model's (same bytes, flattened): the guard refuses it.
        string reshaped = Path.Combine(_dir, "again");
        Directory.Move(Path.Combine(_dir, "c8"), reshaped);
        string ck = Checkpoint();
        var (name, numel) = ForgeShape(ck, n => n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var t = Trainer();
        var e = Assert.Throws<CheckpointRefusedException>(() => t.Restore(CheckpointDir.Open(ck)));
        Assert.Contains("optimizer.safetensors: does not match the model configuration, nothing was loaded", e.Message);
        Assert.Contains($"'{name}' has shape [{numel}]", e.Message);
        Assert.Equal(0, t.Step);
    }

    [Fact]
    public void Init_from_a_pickle_is_refused_whatever_its_name()
    {
        string evil = Path.Combine(_dir, "evil.pth");
        File.WriteAllBytes(evil, [0x80, 0x02, (byte)'c', (byte)'o', (byte)'s', 0x0a, (byte)'s', (byte)'y', (byte)'s', (byte)'t', (byte)'e', (byte)'m', 0x0a]);
        string renamed = Path.Combine(_dir, "weights.safetensors");
        File.Copy(evil, renamed);
        using var t = Trainer();
        foreach (var (path, why) in new[] { (evil, "its name ends in .pth"), (renamed, "it is a pickle stream") })
        {
            var e = Assert.Throws<CheckpointRefusedException>(() => t.InitFrom(path));
            Assert.Contains(why, e.Message);
            Assert.Contains("can run arbitrary code", e.Message);
            Assert.Contains("litevae weights convert", e.Message);
        }
    }

    [Fact]
    public void Every_weights_file_of_a_checkpoint_carries_the_model_config()
    {
        string dir = Checkpoint();
        foreach (var file in new[] { "model.safetensors", "ema.safetensors" })
        {
            var meta = Safetensors.ReadHeader(Path.Combine(dir, file)).Metadata;
            Assert.Equal(ModelConfigJson.Write(Tiny()), meta[ModelConfigJson.MetadataKey]);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
