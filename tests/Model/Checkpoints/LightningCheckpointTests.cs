using System.IO.Compression;
using System.Text;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Tests.Support;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

/// <summary>
/// Lightning .ckpt import and export against files PyTorch 1.13 wrote (tests/fixtures/tools/make_lightning_fixtures.py):
/// the import reads state_dict past pickled objects it must not build, and the export is the file torch.save writes.
/// </summary>
public sealed class LightningCheckpointTests : IDisposable
{
    private static readonly string Ckpt = RepoPaths.Fixtures("lightning", "tiny-lightning.ckpt");
    private static readonly string Weights = RepoPaths.Fixtures("lightning", "tiny-lightning.safetensors");
    private static readonly string TorchExport = RepoPaths.Fixtures("lightning", "tiny-export-torch.ckpt");
    private readonly string _dir = Directory.CreateTempSubdirectory("litevae-lightning-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, e) in expected)
        {
            var a = actual[key];
            Assert.True(e.dtype == a.dtype, $"{key}: dtype {a.dtype}, expected {e.dtype}");
            Assert.True(e.shape.SequenceEqual(a.shape), $"{key}: shape [{string.Join(", ", a.shape)}], expected [{string.Join(", ", e.shape)}]");
            using var ec = e.contiguous();
            using var ac = a.contiguous();
            Assert.True(ec.bytes.SequenceEqual(ac.bytes), $"{key}: bytes differ");
        }
    }

    [Fact]
    public void ImportOfTorchWrittenCheckpointEqualsTheSafetensorsBitForBit()
    {
        using var imported = LightningCheckpoint.Read(Ckpt);
        var expected = Safetensors.Load(Weights);
        try
        {
            AssertSameTensors(expected, imported.StateDict);
            // bf16 decoder, an int32 0-d counter, and a tensor torch saved with transposed strides all came through.
            Assert.Equal(ScalarType.BFloat16, imported.StateDict["decoder.conv_in.weight"].dtype);
            Assert.Equal(ScalarType.Int32, imported.StateDict["decoder_ema.num_updates"].dtype);
            Assert.Empty(imported.StateDict["decoder_ema.num_updates"].shape);
            Assert.Equal(7, imported.GlobalStep);
            Assert.Equal(1, imported.Epoch);
            Assert.Equal("1.9.0", imported.LightningVersion);
            Assert.Contains("hyper_parameters", imported.OtherEntries);
            Assert.Contains("optimizer_states", imported.OtherEntries);
            Assert.Null(imported.ModelJson);
        }
        finally
        {
            foreach (var t in expected.Values) t.Dispose();
        }
    }

    [Fact]
    public void TheStrictReaderStillRefusesTheObjectsInHyperParameters()
    {
        // `weights convert` keeps refusing any global it does not know; only the Lightning import tolerates them.
        var e = Assert.Throws<InvalidDataException>(() => PyTorchFile.Load(Ckpt));
        Assert.Contains("argparse.Namespace", e.Message);
    }

    private string Export(string name = "export.ckpt")
    {
        var header = Safetensors.ReadHeader(Weights);
        var tensors = Safetensors.Load(Weights);
        try
        {
            string path = Path.Combine(_dir, name);
            var ordered = header.Entries.Select(e => new KeyValuePair<string, Tensor>(e.Name, tensors[e.Name])).ToList();
            LightningCheckpoint.Write(path, ordered, globalStep: 7, epoch: 0, header.Metadata["litevae.model"]);
            return path;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void ExportIsByteForByteWhatTorchSaveWritesForTheSameDict()
    {
        string path = Export();
        byte[] ours = File.ReadAllBytes(path), torchs = File.ReadAllBytes(TorchExport);
        if (!ours.SequenceEqual(torchs))
        {
            // Name the first differing record, to make a failure readable.
            using var a = ZipFile.OpenRead(path);
            using var b = ZipFile.OpenRead(TorchExport);
            Assert.Equal(b.Entries.Select(e => e.FullName), a.Entries.Select(e => e.FullName));
            foreach (var (ea, eb) in a.Entries.Zip(b.Entries))
                Assert.True(Read(ea).SequenceEqual(Read(eb)), $"record {ea.FullName} differs from torch's");
            Assert.Fail($"records are equal but the zip layout differs ({ours.Length} bytes vs torch's {torchs.Length})");
        }
    }

    private static byte[] Read(ZipArchiveEntry e)
    {
        using var s = e.Open();
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    [Fact]
    public void ExportReadsBackToTheSameTensorsStepAndConfig()
    {
        string path = Export();
        using var back = LightningCheckpoint.Read(path);
        var source = Safetensors.Load(Weights);
        try
        {
            AssertSameTensors(source, back.StateDict);
            Assert.Equal(7, back.GlobalStep);
            Assert.Equal(0, back.Epoch);
            Assert.Equal(Safetensors.ReadHeader(Weights).Metadata["litevae.model"], back.ModelJson);
            Assert.Empty(back.OtherEntries);
        }
        finally
        {
            foreach (var t in source.Values) t.Dispose();
        }
    }

    [Fact]
    public void AnObjectInsideStateDictIsRefusedByKeyAndNeverBuilt()
    {
        // {'state_dict': {'a': os.system('ls')}, 'hyper_parameters': os.system('ls')}: the second is inert
        // (dropped), the first is where weights are read and must be refused, naming the key.
        var pkl = new MemoryStream();
        void S(string s) { var b = Encoding.UTF8.GetBytes(s); pkl.WriteByte((byte)'X'); pkl.Write(BitConverter.GetBytes(b.Length)); pkl.Write(b); }
        void Call() { pkl.Write("cos\nsystem\n"u8); S("ls"); pkl.WriteByte(0x85); pkl.WriteByte((byte)'R'); }
        pkl.Write([0x80, 2, (byte)'}', (byte)'(']);
        S("hyper_parameters"); Call();
        S("state_dict"); pkl.WriteByte((byte)'}'); S("a"); Call(); pkl.WriteByte((byte)'s');
        pkl.Write("u."u8);
        string path = Path.Combine(_dir, "evil.ckpt");
        using (var f = File.Create(path))
        {
            var zip = new TorchZipWriter(f);
            zip.WriteRecord("data.pkl", pkl.ToArray());
            zip.WriteRecord("version", "3\n"u8);
            zip.Finish();
        }
        var e = Assert.Throws<InvalidDataException>(() => LightningCheckpoint.Read(path));
        Assert.Contains("'a'", e.Message);
        Assert.Contains("os.system", e.Message);
    }

    [Fact]
    public void PicklerMemoizesRepeatsAsPythonDoes()
    {
        // Two tensors: the second reuses the memoized 'storage', 'cpu', rebuild function and OrderedDict
        // (BINGET 'h'), while a new dtype gets its own GLOBAL.
        using var a = zeros(2, 3);
        using var b = zeros([1], ScalarType.BFloat16);
        var w = new TorchPickleWriter();
        byte[] p = w.Write(new PickleMapping([new("a", a), new("b", b)], Ordered: true));
        string text = Encoding.Latin1.GetString(p);
        Assert.Equal(1, CountOf(text, "storage"));
        Assert.Equal(1, CountOf(text, "_rebuild_tensor_v2"));
        Assert.Equal(1, CountOf(text, "FloatStorage"));
        Assert.Equal(1, CountOf(text, "BFloat16Storage"));
        Assert.Equal(2, w.Storages.Count);
    }

    private static int CountOf(string s, string what) => (s.Length - s.Replace(what, "").Length) / what.Length;
}
