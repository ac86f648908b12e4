using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>
/// Averages a flat gradient buffer (FlatParameters keeps all gradients of one dtype in one contiguous
/// buffer) over the ranks, in place.
///
/// Overlap with backward: TorchSharp 0.107 has no tensor or post-accumulate-grad hooks (only module
/// forward hooks), so there is no point during backward at which part of the gradient is known to be
/// final. A custom autograd.Function could call back during backward, but on libtorch's autograd device
/// thread (outside the trainer's dispose scopes and actor thread). The all-reduce therefore runs once after
/// backward, on the whole flat buffer: a single NCCL call (NCCL pipelines big buffers internally), which
/// the data-parallel benchmark measures as a small share of the step. <paramref name="bucketElements"/>
/// still splits the buffer into views reduced as one grouped call (for transports that prefer bounded
/// messages); 0 = one piece.
/// </summary>
public static class GradientAllReduce
{
    public static void Average(ICollective collective, Tensor flatGrad, long bucketElements = 0)
    {
        if (collective.WorldSize == 1)
        {
            collective.ThrowIfBroken();
            return;
        }
        long n = flatGrad.numel();
        if (bucketElements <= 0 || bucketElements >= n)
        {
            collective.AllReduce(flatGrad, ReduceOp.Average);
            return;
        }
        var flat = flatGrad.dim() == 1 ? flatGrad : flatGrad.view(-1);
        var buckets = new List<Tensor>();
        try
        {
            for (long start = 0; start < n; start += bucketElements)
                buckets.Add(flat.narrow(0, start, Math.Min(bucketElements, n - start)));
            collective.AllReduce(buckets, ReduceOp.Average);
        }
        finally
        {
            foreach (var b in buckets) b.Dispose();
            if (!ReferenceEquals(flat, flatGrad)) flat.Dispose();
        }
    }
}
