using System.Net;
using LiteVae.Model.Distributed;

namespace LiteVae.Model.Tests.Distributed;

// Not in parallel with other test classes: the ranks' numerics are compared to fp32 noise, and other
// classes drawing from libtorch's process-wide RNG at the same time would change this run's draws.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DistributedCollection
{
    public const string Name = "distributed (process-wide torch thread setting)";
}

/// <summary>Runs one body per rank, each on its own thread, over a fresh loopback TCP group.</summary>
internal static class TcpGroup
{
    public static TcpCollectiveOptions Options(double opTimeoutS = 20, double joinTimeoutS = 20) =>
        new(IPAddress.Loopback, TimeSpan.FromSeconds(joinTimeoutS), TimeSpan.FromSeconds(opTimeoutS));

    /// <remarks>
    /// Several ranks as threads of one process would each use libtorch's whole intra-op thread pool and
    /// oversubscribe the CPU (a 4-rank run is ~5× slower), so libtorch runs single-threaded meanwhile. The
    /// setting is process-wide: the tests that use this class share one collection and run one at a time.
    /// </remarks>
    public static T[] Run<T>(int world, Func<int, TcpCollective, T> body, TcpCollectiveOptions? options = null)
    {
        int threads = TorchSharp.torch.get_num_threads();
        if (world > 1) TorchSharp.torch.set_num_threads(1);
        try
        {
            return RunRanks(world, body, options);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
    }

    private static T[] RunRanks<T>(int world, Func<int, TcpCollective, T> body, TcpCollectiveOptions? options)
    {
        options ??= Options();
        var id = TcpCollective.CreateGroupId(options);
        var results = new T[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                using var c = TcpCollective.Join(id, r, world, options);
                results[r] = body(r, c);
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        foreach (var t in threads)
            Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a rank hung");
        var first = errors.FirstOrDefault(e => e is not null);
        if (first is not null)
            throw new AggregateException("rank failed: " + first.Message, errors.Where(e => e is not null)!);
        return results;
    }
}
