using System.Net;
using LiteVae.Model.Distributed.Nccl;

namespace LiteVae.Model.Distributed;

/// <summary>The collectives of a data-parallel trainer (HOCON <c>litevae.distributed</c>, bound by the Host).</summary>
/// <param name="Backend">auto (NCCL on CUDA devices, TCP on CPU), nccl or tcp.</param>
/// <param name="NcclLibrary">An explicit libnccl.so.2; null = the installed PyTorch's copy.</param>
/// <param name="LibrarySearch">Extra folders to look for NCCL and the CUDA runtime in (the Host passes LD_LIBRARY_PATH's).</param>
/// <param name="TcpAddress">Interface the TCP collective listens on and advertises.</param>
/// <param name="CheckWeightsEvery">Steps between cross-rank weight checksums (0 = never).</param>
/// <param name="BucketMb">Gradient all-reduce bucket size; 0 = the whole flat buffer in one call.</param>
public sealed record CollectiveSettings(
    string Backend, string? NcclLibrary, IReadOnlyList<string> LibrarySearch, IPAddress TcpAddress, TimeSpan JoinTimeout,
    TimeSpan OperationTimeout, int CheckWeightsEvery, double BucketMb)
{
    public static readonly CollectiveSettings Default = new("auto", null, [], IPAddress.Loopback,
        TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(300), 100, 0);

    /// <summary>The backend for a trainer on <paramref name="device"/> ("cpu", "cuda:0", …).</summary>
    public string BackendFor(string device) =>
        Backend != "auto" ? Backend : device.StartsWith("cuda", StringComparison.Ordinal) ? "nccl" : "tcp";
}

/// <summary>Builds the collective backend a trainer uses, from its settings.</summary>
public static class CollectiveFactories
{
    public static ICollectiveFactory Create(CollectiveSettings s, string device)
    {
        if (s.BackendFor(device) == "tcp")
            return new TcpCollectiveFactory(new TcpCollectiveOptions(s.TcpAddress, s.JoinTimeout, s.OperationTimeout));
        var nccl = NcclLibrary.Load(s.NcclLibrary, s.LibrarySearch);
        var cudart = CudaRuntime.Load(null, s.LibrarySearch);
        return new NcclCollectiveFactory(nccl, cudart, new NcclCollectiveOptions(s.JoinTimeout, s.OperationTimeout, TimeSpan.FromMilliseconds(100)));
    }
}
