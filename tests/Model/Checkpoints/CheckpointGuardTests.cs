using System.Buffers.Binary;
using LiteVae.Model.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

/// <summary>
/// Checkpoints are safetensors whose header matches the model (keys, shapes, dtypes, size), checked before
/// any tensor exists; pickles are refused by name and by content.
/// </summary>
public sealed class CheckpointGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("litevae-guard-").FullName;

    private static nn.Module<Tensor, Tensor> Model(int channels = 8) =>
        nn.Sequential(("conv", nn.Conv2d(3, channels, 3)), ("norm", nn.BatchNorm2d(channels)));

    private string Save(string name, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        string path = Path.Combine(_dir, name);
        Safetensors.Save(path, tensors);
        return path;
    }

    private static long Allocations() =>
        DisposeScopeManager.Statistics.CreatedOutsideScopeCount + DisposeScopeManager.Statistics.CreatedInScopeCount;

    /// <summary>Runs <paramref name="refused"/> and checks it throws without allocating a tensor.</summary>
    private static string RefusedWithoutAllocating(Action refused)
    {
        long before = Allocations();
        var e = Assert.Throws<CheckpointRefusedException>(refused);
        Assert.Equal(before, Allocations());
        return e.Message;
    }

    [Fact]
    public void A_matching_checkpoint_loads_exactly()
    {
        using var source = Model();
        using (no_grad()) foreach (var p in source.parameters()) p.normal_();
        string path = Save("ok.safetensors", source.state_dict());
        using var target = Model();
        long before = Allocations();
        var report = CheckpointGuard.LoadInto(target, path);
        Assert.True(report.IsExact);
        Assert.True(Allocations() > before, "control: a load that reads tensors shows up in the allocation counters");
        foreach (var (k, v) in source.state_dict())
            Assert.True(v.equal(target.state_dict()[k]).all().item<bool>(), k);
    }

    [Fact]
    public void A_checkpoint_of_another_shape_is_refused_before_allocation_and_the_model_is_untouched()
    {
        using var wide = Model(16);
        string path = Save("wide.safetensors", wide.state_dict());
        using var model = Model(8);
        using var before = model.state_dict()["conv.weight"].clone();
        var spec = CheckpointGuard.SpecOf(model);
        string msg = RefusedWithoutAllocating(() => CheckpointGuard.Verify(path, spec));
        Assert.Contains("'conv.weight' has shape [16, 3, 3, 3], the model needs [8, 3, 3, 3]", msg);
        Assert.Contains(path, msg);
        Assert.Throws<CheckpointRefusedException>(() => CheckpointGuard.LoadInto(model, path));
        Assert.True(before.equal(model.state_dict()["conv.weight"]).all().item<bool>());
    }

    [Fact]
    public void Missing_and_unexpected_keys_are_named()
    {
        using var model = Model();
        var sd = model.state_dict().Where(kv => kv.Key != "norm.running_var").ToList();
        using var extra = ones(4);
        sd.Add(new("sneaky.payload", extra));
        string path = Save("keys.safetensors", sd);
        string msg = RefusedWithoutAllocating(() => CheckpointGuard.Verify(path, CheckpointGuard.SpecOf(model)));
        Assert.Contains("1 missing: norm.running_var", msg);
        Assert.Contains("1 unexpected: sneaky.payload", msg);
        // Keys the module does not own are allowed (a sub-module out of a bigger file); missing ones never are.
        string scoped = RefusedWithoutAllocating(() => CheckpointGuard.Verify(path, CheckpointGuard.SpecOf(model), owns: k => !k.StartsWith("sneaky.")));
        Assert.Contains("1 missing: norm.running_var", scoped);
        Assert.DoesNotContain("unexpected", scoped);
    }

    [Fact]
    public void Integer_buffers_must_keep_their_dtype_while_float_weights_may_change_precision()
    {
        using var model = Model();
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        using var asFloat = sd["norm.num_batches_tracked"].to(float32);
        sd["norm.num_batches_tracked"] = asFloat;
        string bad = Save("dtype.safetensors", sd);
        Assert.Contains("'norm.num_batches_tracked' is Float32, the model needs Int64",
            RefusedWithoutAllocating(() => CheckpointGuard.Verify(bad, CheckpointGuard.SpecOf(model))));

        using var source = Model();
        using var bf16 = source.state_dict()["conv.weight"].to(bfloat16);
        var half = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        half["conv.weight"] = bf16;
        string ok = Save("bf16.safetensors", half);
        CheckpointGuard.LoadInto(model, ok);
        using var back = bf16.to(float32);
        Assert.True(back.equal(model.state_dict()["conv.weight"]).all().item<bool>());
    }

    [Fact]
    public void Bytes_no_tensor_accounts_for_are_refused()
    {
        using var model = Model();
        string path = Save("junk.safetensors", model.state_dict());
        File.AppendAllText(path, "#!/bin/sh\nrm -rf ~\n");
        Assert.Contains("data bytes but its tensors account for", RefusedWithoutAllocating(() => CheckpointGuard.Verify(path, CheckpointGuard.SpecOf(model))));
    }

    [Fact]
    public void Each_refusal_says_whether_the_file_is_damaged_unsafe_or_for_another_model()
    {
        using var model = Model();
        var spec = CheckpointGuard.SpecOf(model);
        RefusalReason Reason(string path) => Assert.Throws<CheckpointRefusedException>(() => CheckpointGuard.Verify(path, spec)).Reason;

        string whole = Save("whole.safetensors", model.state_dict());
        string cut = Path.Combine(_dir, "cut.safetensors");
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(cut, bytes.AsSpan(0, bytes.Length - 16).ToArray());
        Assert.Equal(RefusalReason.Damaged, Reason(cut));
        using var wider = Model(channels: 16);
        Assert.Equal(RefusalReason.OtherModel, Reason(Save("wider.safetensors", wider.state_dict())));
        string pickle = Path.Combine(_dir, "w.pth");
        File.WriteAllBytes(pickle, [0x80, 0x02]);
        Assert.Equal(RefusalReason.UnsafeFormat, Reason(pickle));
    }

    [Fact]
    public void A_huge_header_is_refused_before_it_is_read()
    {
        string path = Path.Combine(_dir, "huge.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 50_000_000);
        File.WriteAllBytes(path, bytes);
        using var model = Model();
        Assert.Contains("larger than any header for this model", RefusedWithoutAllocating(() => CheckpointGuard.Verify(path, CheckpointGuard.SpecOf(model))));
    }

    [Theory]
    [InlineData("zip.pth", "zip.pth")]
    [InlineData("legacy.pth", "legacy.pth")]
    [InlineData("evil.pth", "evil.pth")]
    [InlineData("zip.pth", "renamed-zip.safetensors")]
    [InlineData("evil.pth", "renamed-evil.safetensors")]
    [InlineData("legacy.pth", "renamed-legacy.ckpt")]
    public void Pickle_checkpoints_are_refused_by_name_and_by_content(string fixture, string name)
    {
        string path = Path.Combine(_dir, name);
        File.Copy(MetricFixtures.Path("pth", fixture), path);
        using var model = Model();
        string msg = RefusedWithoutAllocating(() => CheckpointGuard.LoadInto(model, path));
        Assert.Contains("can run arbitrary code", msg);
        Assert.Contains("litevae weights convert", msg);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
