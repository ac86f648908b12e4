using System.Buffers.Binary;
using System.Text;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Model.Tests.Checkpoints;

/// <summary>The receiving side of a checkpoint copy on disk: chunks in order only, resumable from what is on disk (also
/// after a restart), a file with other bytes than the manifest's is deleted and named, and nothing is a checkpoint
/// before <see cref="CheckpointDownload.Finish"/> renames the complete folder into place.</summary>
public sealed class CheckpointDownloadTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"litevae-download-{Guid.NewGuid():N}");
    private string Source => Path.Combine(_root, "a", "checkpoints");
    private string Target => Path.Combine(_root, "b", "checkpoints");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string WriteCheckpoint(long step, int floats)
    {
        Directory.CreateDirectory(Source);
        string temp = Path.Combine(Source, $".tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        var header = Encoding.UTF8.GetBytes($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{floats}],\"data_offsets\":[0,{floats * 4}]}}}}");
        var bytes = new byte[8 + header.Length + floats * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        new Random((int)step).NextBytes(bytes.AsSpan(8 + header.Length));
        File.WriteAllBytes(Path.Combine(temp, "model.safetensors"), bytes);
        File.WriteAllText(Path.Combine(temp, CheckpointStore.StateFile),
            new TrainerState { Step = step, Files = new Dictionary<string, long> { ["model.safetensors"] = bytes.Length } }.ToJson());
        return CheckpointStore.Adopt(Source, temp, step, new RetentionPolicy(10));
    }

    /// <summary>Copies every file in chunks of <paramref name="chunk"/> bytes, stopping after <paramref name="maxChunks"/>.</summary>
    private static void Copy(string source, CheckpointDownload d, int chunk, int maxChunks = int.MaxValue)
    {
        int n = 0;
        while (d.NextIncomplete() is { } f && n++ < maxChunks)
        {
            long have = d.Have(f.Name);
            var data = File.ReadAllBytes(Path.Combine(source, f.Name));
            d.Append(f.Name, have, data.AsSpan((int)have, (int)Math.Min(chunk, f.Size - have)));
        }
    }

    [Fact]
    public void A_copy_is_invisible_until_finished_and_resumes_from_the_bytes_on_disk_after_a_restart()
    {
        string source = WriteCheckpoint(8, 20_000);
        var manifest = CheckpointManifest.Of(source);
        var first = CheckpointDownload.Begin(Target, 8, manifest);
        Copy(source, first, 10_000, maxChunks: 3);
        Assert.Empty(CheckpointStore.List(Target));
        Assert.False(File.Exists(Path.Combine(Target, "last")));

        // The process died: a new download of the same checkpoint continues in the same partial folder.
        var again = CheckpointDownload.Begin(Target, 8, manifest);
        Assert.Equal(first.Folder, again.Folder);
        Assert.Equal(30_000, again.Have("model.safetensors"));
        Copy(source, again, 10_000);
        string final = again.Finish(new RetentionPolicy(3));

        Assert.Equal([(8L, final)], CheckpointStore.List(Target));
        Assert.Equal(manifest, CheckpointManifest.Of(final));
        Assert.Equal(8, CheckpointDir.Open(Path.Combine(Target, "last")).State.Step);
        Assert.Empty(Directory.EnumerateDirectories(Target, ".part-*"));
    }

    [Fact]
    public void A_chunk_out_of_order_is_refused()
    {
        string source = WriteCheckpoint(4, 1_000);
        var d = CheckpointDownload.Begin(Target, 4, CheckpointManifest.Of(source));
        var e = Assert.Throws<InvalidDataException>(() => d.Append("model.safetensors", 100, new byte[10]));
        Assert.Contains("at byte 100", e.Message);
        Assert.Throws<InvalidDataException>(() => d.Append("other.bin", 0, new byte[10]));
    }

    [Fact]
    public void A_file_with_other_bytes_than_the_manifest_is_deleted_named_and_not_published()
    {
        string source = WriteCheckpoint(4, 5_000);
        var d = CheckpointDownload.Begin(Target, 4, CheckpointManifest.Of(source));
        Copy(source, d, 4096);
        string model = Path.Combine(d.Folder, "model.safetensors");
        var bytes = File.ReadAllBytes(model);
        bytes[^1] ^= 1;
        File.WriteAllBytes(model, bytes);

        var e = Assert.Throws<InvalidDataException>(() => d.Finish(new RetentionPolicy(3)));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("SHA-256", e.Message);
        Assert.False(File.Exists(model));
        Assert.Empty(CheckpointStore.List(Target));
        // Fetched again, it is published.
        Copy(source, d, 4096);
        Assert.Equal(4, CheckpointDir.Open(d.Finish(new RetentionPolicy(3))).State.Step);
    }

    [Fact]
    public void A_manifest_naming_a_path_is_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() => CheckpointDownload.Begin(Target, 1,
            [new FileDigest(CheckpointStore.StateFile, 10, "00"), new FileDigest("../escape", 10, "00")]));
        Assert.Contains("../escape", e.Message);
    }

    [Fact]
    public void An_older_step_adopted_beside_newer_ones_is_kept_and_last_stays_on_the_newest()
    {
        foreach (long s in new long[] { 12, 16, 20 })
        {
            string src = WriteCheckpoint(s, 100);
            var dl = CheckpointDownload.Begin(Target, s, CheckpointManifest.Of(src));
            Copy(src, dl, 1 << 20);
            dl.Finish(new RetentionPolicy(3));
        }
        string old = WriteCheckpoint(4, 100);
        var d = CheckpointDownload.Begin(Target, 4, CheckpointManifest.Of(old));
        Copy(old, d, 1 << 20);
        string final = d.Finish(new RetentionPolicy(3));
        Assert.True(Directory.Exists(final));
        Assert.Equal(20, CheckpointDir.Open(Path.Combine(Target, "last")).State.Step);
    }
}
