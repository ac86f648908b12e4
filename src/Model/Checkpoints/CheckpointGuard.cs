using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Checkpoints;

/// <summary>What a module expects one tensor of a checkpoint to be.</summary>
public sealed record TensorSpec(string Key, ScalarType DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>Why a checkpoint was refused: callers word their advice by it (another file, or another --model).</summary>
public enum RefusalReason
{
    /// <summary>A pickle, a zip, a directory or another format than safetensors.</summary>
    UnsafeFormat,
    /// <summary>Not a whole safetensors file (cut short, a bad header, bytes no tensor declares).</summary>
    Damaged,
    /// <summary>A sound file whose keys, shapes or dtypes are not the model's: written for another configuration.</summary>
    OtherModel,
}

/// <summary>A checkpoint refused before anything was loaded from it; the message says why and what to do.</summary>
public sealed class CheckpointRefusedException(string message, RefusalReason reason) : Exception(message)
{
    public RefusalReason Reason { get; } = reason;
}

/// <summary>
/// The one door model weights come in through when they may come from someone else (a path in a
/// command, a resumed run, <c>--checkpoint</c>): safetensors only, and the header is compared with the
/// module's own state dict (every key, shape and dtype, the total size) before a single tensor is
/// allocated. A pickle (.pth/.pt/.ckpt, or one renamed) is refused outright: unpickling runs code. The
/// restricted reader (<see cref="PyTorchFile"/>) exists only for converting well-known pretrained
/// perceptual weights with <c>litevae weights convert</c>.
/// </summary>
public static class CheckpointGuard
{
    /// <summary>Real headers take ~100 bytes per tensor; this leaves ample room and bounds what a hostile
    /// header can make us read.</summary>
    public static long HeaderLimit(int tensorCount) => 64 * 1024 + 1024L * tensorCount;

    private static readonly string[] PickleExtensions = [".pth", ".pt", ".ckpt", ".bin", ".pkl", ".pickle", ".tar"];

    /// <summary>The keys, dtypes and shapes of the module's state dict (under <paramref name="prefix"/> in the file).</summary>
    public static IReadOnlyList<TensorSpec> SpecOf(nn.Module module, string prefix = "") =>
        module.state_dict().Select(kv => new TensorSpec(prefix + kv.Key, kv.Value.dtype, kv.Value.shape)).ToList();

    /// <summary>
    /// Checks <paramref name="path"/> against <paramref name="expected"/> without allocating tensors. Every
    /// expected key must be there with its shape and a compatible dtype, and every key the module
    /// <paramref name="owns"/> (default: all of them) must be expected; keys it does not own are allowed
    /// (a training checkpoint's <c>loss.*</c> tensors when only the autoencoder is loaded).
    /// </summary>
    public static SafetensorsHeader Verify(string path, IReadOnlyList<TensorSpec> expected, Func<string, bool>? owns = null)
    {
        RefuseUnsafeFormat(path);
        CheckHeaderLength(path, HeaderLimit(expected.Count + 16));
        SafetensorsHeader header;
        try { header = Safetensors.ReadHeader(path); }
        catch (InvalidDataException e) { throw new CheckpointRefusedException($"{path}: not a readable safetensors file ({e.Message}).", RefusalReason.Damaged); }
        // Every data byte must belong to a tensor: no trailing or hidden payload, nothing cut short.
        long declared = header.Entries.Sum(e => e.End - e.Begin);
        long data = new FileInfo(path).Length - header.DataStart;
        if (declared != data)
            throw new CheckpointRefusedException($"{path}: the file holds {data} data bytes but its tensors account for {declared}: " +
                "it is cut short or carries bytes no tensor declares; nothing was loaded.", RefusalReason.Damaged);
        var problems = new List<string>();
        var missing = new List<string>();
        var byKey = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        foreach (var spec in expected)
        {
            if (!byKey.TryGetValue(spec.Key, out var entry))
                missing.Add(spec.Key);
            else if (!entry.Shape.SequenceEqual(spec.Shape))
                problems.Add($"'{spec.Key}' has shape [{string.Join(", ", entry.Shape)}], the model needs [{string.Join(", ", spec.Shape)}]");
            else if (!DTypeFits(entry.DType, spec.DType))
                problems.Add($"'{spec.Key}' is {entry.DType}, the model needs {spec.DType}");
        }
        if (missing.Count > 0)
            problems.Insert(0, $"{missing.Count} missing: {List(missing)}");
        var known = expected.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        var unexpected = header.Entries.Where(e => !known.Contains(e.Name) && (owns is null || owns(e.Name))).Select(e => e.Name).ToList();
        if (unexpected.Count > 0)
            problems.Add($"{unexpected.Count} unexpected: {List(unexpected)}");
        if (problems.Count > 0)
            throw new CheckpointRefusedException(
                $"{path}: does not match the model configuration, nothing was loaded: {string.Join("; ", problems.Take(8))}" +
                $"{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")}. " +
                "Was it written for another model config? (the config used for training is in the checkpoint's config.conf)", RefusalReason.OtherModel);
        return header;
    }

    /// <summary>Verifies, then loads the expected tensors into <paramref name="module"/> (see <see cref="Verify"/>).
    /// With <paramref name="owns"/>, only the module's keys it accepts are expected and loaded (strictly); the
    /// module's other tensors keep their values and the file's other keys are ignored.</summary>
    public static LoadReport LoadInto(nn.Module module, string path, string prefix = "", Func<string, bool>? owns = null)
    {
        var expected = SpecOf(module, prefix).Where(s => owns is null || owns(s.Key)).ToList();
        Verify(path, expected, owns);
        var keys = expected.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        var tensors = Safetensors.Load(path, keys.Contains);
        try
        {
            return StateDict.Load(module, tensors, path, strict: true, prefix, owns);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>True for the file names PyTorch pickles usually have (.pth, .pt, .ckpt, …).</summary>
    public static bool HasPickleName(string path) => PickleExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Refuses pickles and zip archives (torch.save) by name and by content.</summary>
    public static void RefuseUnsafeFormat(string path)
    {
        if (Directory.Exists(path))
            throw new CheckpointRefusedException($"{path}: is a directory; pass the .safetensors file (or open the checkpoint directory with CheckpointDir).", RefusalReason.UnsafeFormat);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (PickleExtensions.Contains(ext))
            throw PickleRefused(path, $"its name ends in {ext}");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found.", path);
        Span<byte> head = stackalloc byte[4];
        using (var f = File.OpenRead(path))
        {
            int n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
                throw PickleRefused(path, "it is a zip archive (the torch.save format)");
            if (n >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5)
                throw PickleRefused(path, "it is a pickle stream");
        }
        if (ext != ".safetensors")
            throw new CheckpointRefusedException($"{path}: checkpoints must be .safetensors files.", RefusalReason.UnsafeFormat);
    }

    private static CheckpointRefusedException PickleRefused(string path, string why) =>
        new($"{path}: refused, {why}: PyTorch pickle checkpoints can run arbitrary code when loaded, so LiteVae never loads them " +
            "as checkpoints. Use a LiteVae checkpoint (checkpoints/step-N/model.safetensors); an open-litevae/Lightning .ckpt " +
            "converts with `litevae convert in.ckpt out.safetensors --model <config>`, pretrained perceptual weights (LPIPS, " +
            "FID Inception) with `litevae weights convert in.pth out.safetensors`; neither runs pickle code.", RefusalReason.UnsafeFormat);

    private static void CheckHeaderLength(string path, long limit)
    {
        Span<byte> len = stackalloc byte[8];
        using var f = File.OpenRead(path);
        if (f.ReadAtLeast(len, 8, throwOnEndOfStream: false) < 8)
            throw new CheckpointRefusedException($"{path}: too short to be a safetensors file.", RefusalReason.Damaged);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > (ulong)limit)
            throw new CheckpointRefusedException($"{path}: header of {n} bytes is larger than any header for this model can be ({limit}); refused before reading it.", RefusalReason.Damaged);
    }

    private static string List(IReadOnlyList<string> keys) => string.Join(", ", keys.Take(5)) + (keys.Count > 5 ? ", ..." : "");

    private static bool DTypeFits(ScalarType file, ScalarType model) =>
        file == model || (IsFloat(file) && IsFloat(model));   // float weights convert on copy (bf16 ↔ fp32)

    private static bool IsFloat(ScalarType t) => t is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
}
