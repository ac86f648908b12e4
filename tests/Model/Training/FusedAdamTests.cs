using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Training;

public class FusedAdamTests
{
    private static Tensor Batch(int i)
    {
        using var g = new Generator((ulong)(100 + i));
        return randn([2, 3, 8, 8], generator: g);
    }

    private static Tensor Loss(ToyNet net, int i)
    {
        using var x = Batch(i);
        using var y = net.call(x);
        return (y - 0.5).square().mean();
    }

    [Theory]
    [InlineData(0.5, 0.9, 1e-3)]
    [InlineData(0.9, 0.999, 1e-2)]
    public void MatchesTorchSharpAdam(double beta1, double beta2, double lr)
    {
        using var reference = new ToyNet(seed: 11);
        using var subject = new ToyNet(seed: 11);
        using var adam = torch.optim.Adam(reference.parameters(), lr: lr, beta1: beta1, beta2: beta2, eps: 1e-8);
        using var flat = FlatParameters.Create(subject.named_parameters());
        using var fused = new FusedAdam(flat.Single.Data, flat.Single.Grad, new AdamOptions(lr, beta1, beta2, 1e-8));

        for (int i = 0; i < 25; i++)
        {
            adam.zero_grad();
            using (var l = Loss(reference, i)) l.backward();
            adam.step();

            flat.ZeroGrad();
            using (var l = Loss(subject, i)) l.backward();
            fused.Step();
        }
        var expected = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in subject.named_parameters())
        {
            double maxDiff = (p - expected[name]).abs().max().item<float>();
            Assert.True(maxDiff < 1e-6, $"{name}: max |fused - torch| = {maxDiff}");
        }
        Assert.Equal(25.0, fused.StepCount.item<double>());
    }

    [Fact]
    public void ASkippedStepChangesNothingAndLaterStepsMatchARunWithoutIt()
    {
        using var a = new ToyNet(seed: 5);
        using var b = new ToyNet(seed: 5);
        using var flatA = FlatParameters.Create(a.named_parameters());
        using var flatB = FlatParameters.Create(b.named_parameters());
        using var adamA = new FusedAdam(flatA.Single.Data, flatA.Single.Grad, new AdamOptions(1e-2));
        using var adamB = new FusedAdam(flatB.Single.Data, flatB.Single.Grad, new AdamOptions(1e-2));
        using var skip = zeros([]);

        for (int i = 0; i < 6; i++)
        {
            flatA.ZeroGrad();
            using (var l = Loss(a, i)) l.backward();
            adamA.Step();

            flatB.ZeroGrad();
            using (var l = Loss(b, i)) l.backward();
            adamB.Step();
            if (i == 2)
            {
                // B also sees a poisoned step, which must be skipped without touching anything.
                using var before = flatB.Single.Data.clone();
                using var m = adamB.ExpAvg.clone();
                flatB.Single.Grad.fill_(float.NaN);
                adamB.Step(skip);
                Assert.True(before.allclose(flatB.Single.Data, 0, 0));
                Assert.True(m.allclose(adamB.ExpAvg, 0, 0));
                Assert.False(adamB.ExpAvgSq.isnan().any().item<bool>());
            }
        }
        Assert.True(flatA.Single.Data.allclose(flatB.Single.Data, 0, 0));
        Assert.Equal(6.0, adamB.StepCount.item<double>());
    }

    [Fact]
    public void StateRoundTripContinuesExactly()
    {
        using var straight = new ToyNet(seed: 9);
        using var flatS = FlatParameters.Create(straight.named_parameters());
        using var adamS = new FusedAdam(flatS.Single.Data, flatS.Single.Grad, new AdamOptions(1e-2));
        for (int i = 0; i < 8; i++)
        {
            flatS.ZeroGrad();
            using (var l = Loss(straight, i)) l.backward();
            adamS.Step();
        }

        using var first = new ToyNet(seed: 9);
        using var flat1 = FlatParameters.Create(first.named_parameters());
        var saved = new Dictionary<string, Tensor>();
        Tensor weights;
        using (var adam1 = new FusedAdam(flat1.Single.Data, flat1.Single.Grad, new AdamOptions(1e-2)))
        {
            for (int i = 0; i < 4; i++)
            {
                flat1.ZeroGrad();
                using (var l = Loss(first, i)) l.backward();
                adam1.Step();
            }
            foreach (var (k, v) in adam1.State()) saved[k] = v.clone();
            weights = flat1.Single.Data.clone();
        }

        using var second = new ToyNet(seed: 1234); // different init: everything must come from the saved state
        using var flat2 = FlatParameters.Create(second.named_parameters());
        using (no_grad()) flat2.Single.Data.copy_(weights);
        using var adam2 = new FusedAdam(flat2.Single.Data, flat2.Single.Grad, new AdamOptions(1e-2));
        adam2.LoadState(saved, "test");
        for (int i = 4; i < 8; i++)
        {
            flat2.ZeroGrad();
            using (var l = Loss(second, i)) l.backward();
            adam2.Step();
        }
        Assert.True(flatS.Single.Data.allclose(flat2.Single.Data, 0, 0));
    }
}
