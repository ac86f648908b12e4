using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

public class MixedPrecisionTests
{
    private static Tensor Batch(int i)
    {
        using var g = new Generator((ulong)(300 + i));
        return randn([4, 3, 8, 8], generator: g);
    }

    /// <summary>Trains the toy net to a fixed target for some steps; returns the loss curve.</summary>
    private static List<double> Train(Precision precision, int steps, bool channelsLast = false)
    {
        using var net = new ToyNet(seed: 21);
        using var master = MasterWeights.Create(net, precision, channelsLast);
        using var adam = new FusedAdam(master.Params, master.Grads, new AdamOptions(3e-3));
        var dtype = precision.ComputeType();
        var losses = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            master.ZeroGrad();
            var x = Batch(i % 4);
            var target = x.mean([1, 2, 3]).unsqueeze(1).expand(-1, 2);
            var y = net.call(x.to_type(dtype)).to_type(ScalarType.Float32);
            var loss = (y - target).square().mean();
            loss.backward();
            master.GatherGrads();
            adam.Step();
            master.PublishWeights();
            losses.Add(loss.item<float>());
        }
        return losses;
    }

    [Fact]
    public void Bf16MixedTracksTheFp32LossCurve()
    {
        var fp32 = Train(Precision.Fp32, 60);
        var bf16 = Train(Precision.Bf16, 60);
        // Both learn: the loss falls a lot.
        Assert.True(fp32[^1] < 0.2 * fp32[0], $"fp32 did not learn: {fp32[0]} → {fp32[^1]}");
        Assert.True(bf16[^1] < 0.2 * bf16[0], $"bf16 did not learn: {bf16[0]} → {bf16[^1]}");
        // And bf16 stays close to fp32 all along (bf16 has ~3 significant digits).
        double early = Math.Abs(bf16[0] - fp32[0]) / fp32[0];
        double late = Math.Abs(bf16.TakeLast(10).Average() - fp32.TakeLast(10).Average()) / fp32.TakeLast(10).Average();
        Assert.True(early < 0.02, $"first-step losses differ by {early:P1}");
        Assert.True(late < 0.10, $"final losses differ by {late:P1}: fp32 {fp32[^1]}, bf16 {bf16[^1]}");
    }

    [Fact]
    public void Bf16KeepsAnFp32MasterAndPublishesItRounded()
    {
        using var net = new ToyNet(seed: 4);
        var original = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var master = MasterWeights.Create(net, Precision.Bf16, channelsLast: true);
        Assert.True(master.HasSeparateMaster);
        Assert.Equal(ScalarType.Float32, master.Params.dtype);
        Assert.Equal(ScalarType.BFloat16, master.Compute.Data.dtype);
        foreach (var (name, p) in net.named_parameters())
        {
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            var slot = master.Slots.Single(s => s.Name == name);
            using var m = MasterWeights.SlotView(master.Params, slot);
            Assert.True(m.allclose(original[name], 0, 0), $"master of {name} is not the exact fp32 value");
            using var rounded = original[name].to_type(ScalarType.BFloat16);
            Assert.True(p.allclose(rounded, 0, 0), $"compute copy of {name} is not bf16(master)");
        }
        using (no_grad()) master.Params.add_(0.25f);
        master.PublishWeights();
        foreach (var (name, p) in net.named_parameters())
        {
            using var expected = (original[name] + 0.25f).to_type(ScalarType.BFloat16);
            Assert.True(p.allclose(expected, 0, 0), $"{name} did not receive the master update");
        }
    }

    [Fact]
    public void GatherGradsUpcastsTheComputeGradients()
    {
        using var net = new ToyNet(seed: 4);
        using var master = MasterWeights.Create(net, Precision.Bf16);
        master.ZeroGrad();
        using (var x = Batch(0).to_type(ScalarType.BFloat16))
        using (var l = net.call(x).to_type(ScalarType.Float32).sum())
            l.backward();
        master.GatherGrads();
        using var expected = master.Compute.Grad.to_type(ScalarType.Float32);
        Assert.True(expected.allclose(master.Grads, 0, 0));
        Assert.True(master.Grads.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Fp32MasterIsTheModulesOwnBuffer()
    {
        using var net = new ToyNet(seed: 4);
        using var master = MasterWeights.Create(net, Precision.Fp32);
        Assert.False(master.HasSeparateMaster);
        using (no_grad()) master.Params.zero_();
        Assert.All(net.parameters(), p => Assert.Equal(0f, p.abs().sum().item<float>()));
    }

    [Fact]
    public void LossScaleHalvesOnOverflowAndGrowsAfterAGoodRun()
    {
        using var scale = new DynamicLossScale(CPU, initialScale: 1024, growthInterval: 3);
        using var good = ones([]);
        using var bad = zeros([]);
        scale.Update(bad);
        Assert.Equal(512f, scale.Scale.item<float>());
        scale.Update(good);
        scale.Update(good);
        Assert.Equal(512f, scale.Scale.item<float>());
        scale.Update(good);
        Assert.Equal(1024f, scale.Scale.item<float>());
        scale.Update(good); // the count restarted after growing
        Assert.Equal(1024f, scale.Scale.item<float>());
    }
}
