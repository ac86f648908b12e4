using LiteVae.Model.Analysis;
using LiteVae.Model.Configs;
using LiteVae.Model.Decoder;
using LiteVae.Model.Encoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Analysis;

public class ModelProfilerTests
{
    private sealed class Probe : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv;
        private readonly SelfModulatedConv2d smc;
        private readonly Linear head;
        private readonly Conv2d unused; // holds weights but never runs as a module

        public Probe() : base(nameof(Probe))
        {
            conv = nn.Conv2d(3, 4, 3, padding: 1, groups: 1);
            smc = new SelfModulatedConv2d(4, 6, 3);
            head = nn.Linear(6, 5);
            unused = nn.Conv2d(2, 2, 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = smc.call(conv.call(x)).mean([2, 3]);
            return scope.MoveToOuter(head.call(h));
        }
    }

    [Fact]
    public void CountsConvLinearAndCustomModulesOnceEach()
    {
        using var probe = new Probe();
        var profile = ModelProfiler.Profile(probe, batch =>
        {
            using var x = zeros(batch, 3, 8, 10);
            using var y = probe.call(x);
        });
        Assert.Equal(ProfileMethod.ShapeOnly, profile.Method);
        long conv = 4L * 8 * 10 * (3 * 9);   // per sample
        long smc = 6L * 8 * 10 * (4 * 9);    // the SMC's inner conv is not counted again
        long head = 5L * 6;
        Assert.Equal(conv + smc + head, profile.Macs);
        Assert.Equal(new[] { conv, smc, head, 0L }, profile.Children.Select(c => c.Macs));
        Assert.Equal(new[] { "conv", "smc", "head", "unused" }, profile.Children.Select(c => c.Name));
        Assert.Equal(ModelProfiler.CountParameters(probe), profile.Parameters);
        Assert.Equal(new[] { "unused" }, profile.Uncounted);
    }

    [Fact]
    public void HooksAreRemovedAfterwards()
    {
        using var probe = new Probe();
        int calls = 0;
        ModelProfiler.Profile(probe, batch => { calls++; using var y = probe.call(zeros(batch, 3, 4, 4)); });
        var again = ModelProfiler.Profile(probe, batch => { using var y = probe.call(zeros(batch, 3, 4, 4)); });
        Assert.Equal(1, calls);
        Assert.Equal(1L * 4 * 4 * 4 * 27 + 6L * 16 * 36 + 30, again.Macs); // not doubled by stale hooks
    }

    [Fact]
    public void ShapeOnlyAndRealForwardAgree()
    {
        // Fully convolutional, stride-1 convs (the DWT is functional and not counted): MACs scale
        // exactly with the image area, so a real forward at 32 px x 64 must equal the shape-only 256 px count.
        using var model = new LiteAutoencoder(Support.TinyModels.Config());
        var shapes = ModelProfiler.Profile(model, b => { using var y = model.call(zeros(b, 3, 256, 256)); });
        var real = ModelProfiler.Profile(model, b => { using var y = model.call(zeros(b, 3, 32, 32)); }, shapeOnly: false);
        Assert.Equal(ProfileMethod.ShapeOnly, shapes.Method);
        Assert.Equal(ProfileMethod.RealForward, real.Method);
        Assert.Equal(shapes.Macs, real.Macs * 64);
        Assert.Equal(shapes.Children.Select(c => c.Macs), real.Children.Select(c => c.Macs * 64));
        Assert.Equal(new[] { "encoder", "decoder" }, shapes.Children.Select(c => c.Name));
    }

    [Fact]
    public void FallsBackToARealForwardWhenAnEmptyBatchFails()
    {
        using var conv = nn.Conv2d(3, 2, 1);
        var profile = ModelProfiler.Profile(conv, b =>
        {
            using var y = conv.call(zeros(b, 3, 4, 4));
            using var flat = y.view(b, -1); // ambiguous for an empty batch, as in a discriminator head
        });
        Assert.Equal(ProfileMethod.RealForward, profile.Method);
        Assert.Contains("batch-0", profile.Note);
        Assert.Equal(2L * 16 * 3, profile.Macs); // counted once: the failed attempt's partial counts are dropped
    }

    [Fact]
    public void EncoderBMacsAt256AreWithinTwoPercentOfTheReferenceTable()
    {
        using var encoder = new LiteVaeEncoder(EncoderConfig.B, 24);
        var profile = ModelProfiler.Profile(encoder, b => { using var y = encoder.call(zeros(b, 3, 256, 256)); });
        double at256 = profile.Macs;
        Assert.InRange(at256 / 37.4e9, 0.98, 1.02);
        Assert.InRange(at256 / 37.10e9, 0.995, 1.005); // spec 3.3's own count of the reference code
        Assert.Empty(profile.Uncounted);
        Assert.Equal(new[] { "dwt", "extractors", "poolers", "aggregator" }, profile.Children.Select(c => c.Name));
    }

    [Fact]
    public void DecoderMacsAt256AreWithinTwoPercentOfTheReferenceTable()
    {
        using var decoder = new LiteVaeDecoder(DecoderConfig.Reference(12));
        var profile = ModelProfiler.Profile(decoder, b => { using var y = decoder.call(zeros(b, 12, 32, 32)); });
        Assert.Equal(ProfileMethod.ShapeOnly, profile.Method);
        double at256 = profile.Macs;
        Assert.InRange(at256 / 324e9, 0.98, 1.02);
        Assert.InRange(at256 / 323.5e9, 0.995, 1.005);
        Assert.Empty(profile.Uncounted);
    }
}
