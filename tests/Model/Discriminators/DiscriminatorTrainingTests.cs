using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Discriminators;

/// <summary>Output shapes, gradient routing and tensor lifetimes over discriminator steps (tiny, CPU).</summary>
public class DiscriminatorTrainingTests
{
    private static GigaGanConfig TinyGiga => new(ImageSize: 32, BaseChannels: 256, MaxChannels: 32, ConvBlocks: 1, PredLayers: 2, Attention: [8], HeadDim: 32);

    private static long[][] Shapes(IReadOnlyList<Tensor> logits) => [.. logits.Select(l => l.shape)];

    [Fact]
    public void PatchGanGivesOneMapPerImage()
    {
        // k4 convs: 64 -> 32 -> 16 -> 8 (stride 2), then 7 and 6 (stride 1, padding 1); 128 gives 14 (spec).
        using var d = new PatchGanDiscriminator(new PatchGanConfig(Ndf: 8));
        using var _ = no_grad();
        using var x64 = randn(2, 3, 64, 64);
        using var x128 = randn(1, 3, 128, 128);
        Assert.Equal([[2, 1, 6, 6]], Shapes(d.Logits(x64)));
        Assert.Equal([[1, 1, 14, 14]], Shapes(d.Logits(x128)));
        using var flat = d.Module.call(x64);
        Assert.Equal(new long[] { 2, 36 }, flat.shape);
    }

    [Fact]
    public void UNetGanSmallGivesAPixelMapAndAGlobalLogitAtAnyMultipleOf64()
    {
        using var d = new UNetGanDiscriminator(UNetGanConfig.Preset("S"));
        using var _ = no_grad();
        using var square = randn(2, 3, 64, 64);
        using var wide = randn(1, 3, 64, 128);
        Assert.Equal([[2, 1, 64, 64], [2, 1]], Shapes(d.Logits(square)));
        Assert.Equal([[1, 1, 64, 128], [1, 1]], Shapes(d.Logits(wide)));
        using var flat = d.Module.call(square);
        Assert.Equal(new long[] { 2, 64 * 64 + 1 }, flat.shape);
    }

    [Fact]
    public void WrongInputSizesAreRefusedWithAClearMessage()
    {
        using var unet = new UNetGanDiscriminator(new UNetGanConfig(DCh: 4));
        using var giga = new GigaGanDiscriminator(new GigaGanConfig());
        using var x96 = zeros(1, 3, 96, 96);
        using var gray = zeros(1, 1, 64, 64);
        Assert.Contains("multiples of 64", Assert.Throws<ArgumentException>(() => unet.Logits(x96)).Message);
        Assert.Contains("N x 3 x H x W", Assert.Throws<ArgumentException>(() => unet.Logits(gray)).Message);
        Assert.Contains("built for 256 x 256", Assert.Throws<ArgumentException>(() => giga.Logits(x96)).Message);
    }

    [Fact]
    public void GigaGanReturnsItsMapsUnflattened()
    {
        // Image 32: levels at 16, 8, 4 with k4 s2 p2 convs give 17, 9, 5; level 0 has the only map.
        using var d = new GigaGanDiscriminator(TinyGiga);
        using var _ = no_grad();
        using var x = randn(2, 3, 32, 32);
        Assert.Equal([[2, 1, 17, 17], [2, 1, 1, 1]], Shapes(d.Logits(x)));
        using var msio = new GigaGanDiscriminator(TinyGiga with { Msio = true });
        Assert.Equal([[2, 1, 17, 17], [2, 1, 9, 9], [2, 1, 5, 5], [2, 1, 1, 1]], Shapes(msio.Logits(x)));
    }

    [Fact]
    public void ConfigProblemsNameTheKey()
    {
        var e = Assert.Throws<ArgumentException>(() => new UNetGanDiscriminator(new UNetGanConfig(DCh: 16, Attention: [256])));
        Assert.Contains("attention_resolutions", e.Message);
        Assert.Contains(new GigaGanConfig(ImageSize: 100).Problems(), p => p.Key == "image_size");
        Assert.Contains(new GigaGanConfig(MaxChannels: 48).Problems(), p => p.Key == "attention_resolutions");
        Assert.Empty(new GigaGanConfig().Problems());
    }

    public static TheoryData<string> Kinds() => ["patchgan", "unetgan", "gigagan"];

    private static (IDiscriminator D, int Size) Tiny(string kind) => kind switch
    {
        "patchgan" => (new PatchGanDiscriminator(new PatchGanConfig(Ndf: 8)), 32),
        "unetgan" => (new UNetGanDiscriminator(new UNetGanConfig(DCh: 4, Attention: [32])), 64),
        "gigagan" => (new GigaGanDiscriminator(TinyGiga with { UseBn = true }), 32),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DiscriminatorStepTrainsDButNeverTheDetachedGenerator(string kind)
    {
        manual_seed(7);
        var (d, size) = Tiny(kind);
        using var _d = d;
        d.Module.train();
        // Attention starts closed (SA gamma = 0, the transformer's proj_out = 0), which blocks the
        // gradients of everything inside it; open it.
        using (no_grad())
        {
            foreach (var (_, p) in d.Module.named_parameters().Where(p => p.name.EndsWith(".gamma")))
                p.fill_(0.5);
            foreach (var (_, p) in d.Module.named_parameters().Where(p => p.name.EndsWith(".proj_out.weight")))
                p.normal_(0, 0.02);
        }
        using var real = rand(2, 3, size, size) * 2 - 1;
        using var source = randn(2, 3, size, size).requires_grad_();
        using var fakeImages = source.tanh();
        // Logistic, not hinge: with every logit inside (-1, 1) hinge's gradient for the last bias cancels exactly.
        using var dLoss = GanLosses.Discriminator(GanLossKind.Logistic, d.Logits(real), d.Logits(fakeImages.detach()));
        dLoss.backward();
        Assert.Null(source.grad);
        foreach (var (name, p) in d.Module.named_parameters())
        {
            // Unused by design, as in the reference: U-Net GAN's 'linear' head, and GigaGAN's image
            // entry convs of the levels below the first (they serve inputs smaller than the build size).
            if (name.StartsWith("linear.") || (name.Contains(".img_conv.") && !name.StartsWith("blocks.0.")))
                Assert.Null(p.grad);
            else
                Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{kind}: no gradient reached {name}");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void GeneratorLossReachesTheImages(string kind)
    {
        manual_seed(8);
        var (d, size) = Tiny(kind);
        using var _d = d;
        using var source = randn(1, 3, size, size).requires_grad_();
        using var images = source.tanh();
        using var gLoss = GanLosses.Generator(GanLossKind.Logistic, d.Logits(images));
        gLoss.backward();
        Assert.True(source.grad is not null && source.grad.abs().sum().item<float>() > 0);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RepeatedDiscriminatorStepsLeaveNoTensorsBehind(string kind)
    {
        manual_seed(9);
        var (d, size) = Tiny(kind);
        using var _d = d;
        d.Module.train();
        using var optimizer = optim.Adam(d.Module.parameters(), 1e-4, 0.5, 0.9);
        using var real = rand(2, 3, size, size) * 2 - 1;
        using var fake = rand(2, 3, size, size) * 2 - 1;
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = GanLosses.Discriminator(GanLossKind.Hinge, d.Logits(real), d.Logits(fake));
            loss.backward();
            optimizer.step();
        }
        // Two steps create the gradients and Adam's state; after that nothing may accumulate.
        for (int i = 0; i < 2; i++)
            Step();
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 4; i++)
            Step();
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
