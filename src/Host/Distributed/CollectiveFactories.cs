using LiteVae.Host.Config;
using LiteVae.Model.Distributed;
using LiteVae.Model.Distributed.Nccl;

namespace LiteVae.Host.Distributed;

/// <summary>Builds the collective backend a trainer uses, from its settings and this process's environment.</summary>
public static class CollectiveFactories
{
    public static ICollectiveFactory Create(DistributedSettings s, string device)
    {
        string backend = s.BackendFor(device);
        if (backend == "tcp")
            return new TcpCollectiveFactory(new TcpCollectiveOptions(s.TcpAddress, s.JoinTimeout, s.OperationTimeout));
        // The Host is the layer that reads the environment: LD_LIBRARY_PATH entries are extra places to look
        // (the loaded libtorch's own PyTorch install is searched first).
        var search = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries);
        var nccl = NcclLibrary.Load(s.NcclLibrary, search);
        var cudart = CudaRuntime.Load(null, search);
        return new NcclCollectiveFactory(nccl, cudart, new NcclCollectiveOptions(s.JoinTimeout, s.OperationTimeout, TimeSpan.FromMilliseconds(100)));
    }
}
