using System.Net;
using LiteVae.Model.Distributed;

namespace LiteVae.Model.Tests.Distributed;

/// <summary>Runs one body per rank, each on its own thread, over a fresh loopback TCP group.</summary>
internal static class TcpGroup
{
    public static TcpCollectiveOptions Options(double opTimeoutS = 20, double joinTimeoutS = 20) =>
        new(IPAddress.Loopback, TimeSpan.FromSeconds(joinTimeoutS), TimeSpan.FromSeconds(opTimeoutS));

    public static T[] Run<T>(int world, Func<int, TcpCollective, T> body, TcpCollectiveOptions? options = null)
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
