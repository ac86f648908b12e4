using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

public class FlatParametersTests
{
    private static Tensor Input(long seed)
    {
        using var g = new Generator((ulong)seed);
        return randn([2, 3, 8, 8], generator: g);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BackwardAccumulatesIntoTheFlatGradientBuffer(bool channelsLast)
    {
        using var reference = new ToyNet(seed: 7);
        using var flatNet = new ToyNet(seed: 7);
        using var flat = FlatParameters.Create(flatNet.named_parameters(), channelsLast);
        var group = flat.Single;

        // Two backward passes: the second must add to the first (accumulation through the views).
        using var x1 = Input(1);
        using var x2 = Input(2);
        foreach (var x in new[] { x1, x2 })
        {
            using var l1 = reference.call(x).square().sum();
            l1.backward();
            using var l2 = flatNet.call(x).square().sum();
            l2.backward();
        }

        var refParams = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var slot in group.Slots)
        {
            var p = refParams[slot.Name];
            using var gradView = group.Grad.as_strided(slot.Shape, slot.Strides, slot.Offset);
            using var dataView = group.Data.as_strided(slot.Shape, slot.Strides, slot.Offset);
            Assert.True(torch.allclose(gradView, p.grad!, rtol: 1e-5, atol: 1e-6), $"grad of {slot.Name} differs");
            Assert.True(dataView.allclose(p, 0, 0), $"value of {slot.Name} differs");
        }
        // The parameters' .grad really are views of the flat buffer (same memory, not copies).
        group.Grad.fill_(3.0f);
        foreach (var p in flatNet.parameters())
            Assert.Equal(3.0f * p.numel(), p.grad!.sum().item<float>(), 3);
        // Zeroing the flat buffer zeroes every parameter's gradient.
        flat.ZeroGrad();
        foreach (var p in flatNet.parameters())
            Assert.Equal(0.0, p.grad!.abs().sum().item<float>());
    }

    [Fact]
    public void StateDictAndParametersSeeWritesToTheFlatBuffer()
    {
        using var net = new ToyNet(seed: 3);
        var before = net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var flat = FlatParameters.Create(net.named_parameters(), channelsLast: true);
        var sd = net.state_dict();
        foreach (var (k, v) in before)
            Assert.True(v.allclose(sd[k], 0, 0), $"flattening changed {k}");

        using (no_grad())
            flat.Single.Data.add_(1.0);
        foreach (var (k, v) in net.state_dict())
        {
            using var expected = before[k] + 1.0;
            Assert.True(torch.allclose(expected, v), $"{k} does not see the flat buffer");
        }
        // Forward uses the new values too: compare with a fresh net whose weights were set the same way.
        using var twin = new ToyNet(seed: 3);
        using (no_grad())
            foreach (var p in twin.parameters())
                p.add_(1.0);
        using var x = Input(5);
        using var a = net.call(x);
        using var b = twin.call(x);
        Assert.True(torch.allclose(a, b, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void ChannelsLastSlotsHaveChannelsLastStrides()
    {
        using var net = new ToyNet(seed: 3);
        using var flat = FlatParameters.Create(net.named_parameters(), channelsLast: true);
        var w = net.named_parameters().First(p => p.name == "conv2.weight").parameter;
        // conv2.weight is 8x8x3x3: channels-last strides are (C*H*W, 1, W*C, C).
        Assert.Equal(new long[] { 72, 1, 24, 8 }, w.stride());
        Assert.Equal(new long[] { 72, 1, 24, 8 }, w.grad!.stride());
    }

    [Fact]
    public void FrozenParametersAreLeftOut()
    {
        using var net = new ToyNet(seed: 3);
        var frozen = net.named_parameters().First(p => p.name == "head.bias").parameter;
        frozen.requires_grad = false;
        using var flat = FlatParameters.Create(net.named_parameters());
        Assert.DoesNotContain(flat.Single.Slots, s => s.Name == "head.bias");
        Assert.Equal(net.parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
            flat.Single.Slots.Sum(s => s.Numel));
    }
}
