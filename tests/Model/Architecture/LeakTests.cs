using LiteVae.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Architecture;

/// <summary>Live-tensor count stays flat across many forward/backward steps (no leaked temporaries).</summary>
public class LeakTests
{
    [Fact]
    public void LiveTensorCountIsFlatAcross100TrainingSteps()
    {
        manual_seed(8);
        using var model = new LiteAutoencoder(TinyModels.Config());
        using var x = rand(1, 3, 32, 32) * 2 - 1;

        // No scope of our own around the step: anything the model fails to release shows up.
        // (No optimizer: TorchSharp's own optimizers are not what this checks; gradients accumulate in place.)
        void Step()
        {
            var (recon, posterior) = model.Reconstruct(x);
            using (recon)
            using (posterior)
            using (var diff = recon - x)
            using (var abs = diff.abs())
            using (var rec = abs.mean())
            using (var kl = posterior.Kl())
            using (var klMean = kl.mean())
            using (var klTerm = 1e-6 * klMean)
            using (var loss = rec + klTerm)
                loss.backward();
        }

        for (int i = 0; i < 3; i++) Step(); // warm up: gradients get allocated on the first step
        DisposeScopeManager.Statistics.Reset();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 100; i++) Step();
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(before, after);
        // and inference without a scope of the caller's own:
        using (no_grad())
        {
            long start = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 20; i++)
            {
                using var q = model.Encode(x);
                using var y = model.Decode(q.Mean);
            }
            Assert.Equal(start, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }
}
