using System.Buffers.Binary;
using System.Text;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Actors.Tests.Transfer;

/// <summary>A complete checkpoint directory written without libtorch: a valid safetensors file of random floats, the config
/// and the trainer state listing both, published with <see cref="CheckpointStore.Adopt"/> (rename into place).</summary>
public static class TestCheckpoint
{
    public static string Write(string checkpointsDir, long step, int floats, int seed = 1)
    {
        Directory.CreateDirectory(checkpointsDir);
        string temp = Path.Combine(checkpointsDir, $".tmp-test-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        var header = Encoding.UTF8.GetBytes($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{floats}],\"data_offsets\":[0,{floats * 4}]}}}}");
        var bytes = new byte[8 + header.Length + floats * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        new Random(seed).NextBytes(bytes.AsSpan(8 + header.Length));
        File.WriteAllBytes(Path.Combine(temp, "model.safetensors"), bytes);
        File.WriteAllText(Path.Combine(temp, CheckpointStore.ConfigFile), "trainer { max-steps = 10 }\n");
        var sizes = new Dictionary<string, long>
        {
            ["model.safetensors"] = bytes.Length,
            [CheckpointStore.ConfigFile] = new FileInfo(Path.Combine(temp, CheckpointStore.ConfigFile)).Length,
        };
        File.WriteAllText(Path.Combine(temp, CheckpointStore.StateFile), new TrainerState { Step = step, Files = sizes }.ToJson());
        return CheckpointStore.Adopt(checkpointsDir, temp, step, new RetentionPolicy(KeepLast: 10));
    }
}
