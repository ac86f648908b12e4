using LiteVae.Model.Tests.Support;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Architecture;

public class MemoryLayoutTests
{
    [Fact]
    public void ChannelsLastHasNhwcStridesAndTheSameValues()
    {
        using var x = randn(2, 3, 4, 5);
        using var cl = MemoryLayout.ToChannelsLast(x);
        Assert.Equal(new long[] { 60, 1, 15, 3 }, cl.stride());
        Assert.True(MemoryLayout.IsChannelsLast(cl));
        Assert.False(MemoryLayout.IsChannelsLast(x));
        Assert.True(cl.equal(x).all().item<bool>());
    }

    [Fact]
    public void ChannelsLastModelGivesTheSameOutputs()
    {
        manual_seed(12);
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var _ = no_grad();
        using var x = rand(2, 3, 32, 32) * 2 - 1;
        using var q = model.Encode(x);
        using var y = model.Decode(q.Mean);
        MemoryLayout.ConvertToChannelsLast(model);
        Assert.All(model.parameters().Where(p => p.dim() == 4), p => Assert.True(MemoryLayout.IsChannelsLast(p)));
        using var xcl = MemoryLayout.ToChannelsLast(x);
        using var q2 = model.Encode(xcl);
        using var y2 = model.Decode(q2.Mean);
        TensorAssert.RelativeClose(q.Mean, q2.Mean, 1e-5, "mean");
        TensorAssert.RelativeClose(y, y2, 1e-5, "decoded");
        // The state dict still loads and saves by name with the right shapes.
        Assert.Equal(new long[] { 3, 8, 3, 3 }, model.state_dict()["decoder.conv_out.weight"].shape);
    }
}
