using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

public class Fp16Tests
{
    [Fact]
    public void Fp16WithLossScalingTrainsLikeFp32()
    {
        List<double> Curve(Precision p)
        {
            using var net = new ToyNet(seed: 21);
            using var master = MasterWeights.Create(net, p);
            using var adam = new FusedAdam(master.Params, master.Grads, new AdamOptions(3e-3));
            using var scale = p == Precision.Fp16 ? new DynamicLossScale(CPU, initialScale: 1024) : null;
            var losses = new List<double>();
            for (int i = 0; i < 30; i++)
            {
                using var scope = NewDisposeScope();
                using var g = new Generator((ulong)(i % 3));
                master.ZeroGrad();
                var x = randn([4, 3, 8, 8], generator: g);
                var target = x.mean([1, 2, 3]).unsqueeze(1).expand(-1, 2);
                var loss = (net.call(x.to_type(p.ComputeType())).to_type(ScalarType.Float32) - target).square().mean();
                (scale is null ? loss : scale.ScaleLoss(loss)).backward();
                master.GatherGrads();
                scale?.Unscale(master.Grads);
                var check = GradientGuard.Check(master.Grads, null);
                adam.Step(check.Ok);
                master.PublishWeights();
                scale?.Update(check.Ok);
                losses.Add(loss.item<float>());
            }
            return losses;
        }
        var fp32 = Curve(Precision.Fp32);
        var fp16 = Curve(Precision.Fp16);
        Assert.True(fp16[^1] < 0.5 * fp16[0], $"fp16 did not learn: {fp16[0]} → {fp16[^1]}");
        for (int i = 0; i < fp32.Count; i++)
            Assert.True(Math.Abs(fp16[i] - fp32[i]) < 0.05 * fp32[i] + 1e-3, $"step {i}: fp32 {fp32[i]}, fp16 {fp16[i]}");
    }
}
