using System.Diagnostics;
using System.Net;
using LiteVae.Model.Distributed;
using LiteVae.Model.Distributed.Nccl;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench.DataParallel;

/// <summary>
/// One rank of the data-parallel benchmark: joins the TCP control group, bootstraps NCCL through it when
/// asked (rank 0 creates the unique id and broadcasts its 128 bytes), then runs the workloads and returns
/// its numbers. Runs as its own process (processes mode) or as a thread of the parent (threads mode).
/// </summary>
internal static class RankWorker
{
    public static Dictionary<string, object?> Run(DataParallelOptions o, int rank, int world, CollectiveGroupId controlId, Device device,
        Action<string> log)
    {
        var result = new Dictionary<string, object?> { ["rank"] = rank, ["world"] = world, ["device"] = device.ToString() };
        var tcpOptions = new TcpCollectiveOptions(IPAddress.Loopback, TimeSpan.FromSeconds(o.TimeoutS), TimeSpan.FromSeconds(o.TimeoutS));
        using var control = TcpCollective.Join(controlId, rank, world, tcpOptions);
        ICollective data = control;
        NcclCollective? nccl = null;
        try
        {
            if (o.ResolvedBackend == "nccl")
            {
                var sw = Stopwatch.StartNew();
                nccl = JoinNccl(o, control, device, log);
                data = nccl;
                result["nccl_join_s"] = sw.Elapsed.TotalSeconds;
            }
            result["backend"] = data.Backend;
            foreach (var w in o.Workloads)
            {
                control.Barrier();
                switch (w)
                {
                    case "check":
                        result["check"] = CollectiveChecks.Run(data, device, log);
                        break;
                    case "allreduce":
                        result["allreduce"] = AllReduceSweep(o, data, device, log);
                        break;
                    case "train":
                        result["train"] = TrainStepWorkload.Run(o, data, control, device, log);
                        break;
                }
            }
            control.Barrier();
        }
        finally
        {
            nccl?.Dispose();
        }
        return result;
    }

    private static NcclCollective JoinNccl(DataParallelOptions o, TcpCollective control, Device device, Action<string> log)
    {
        if (device.type != DeviceType.CUDA)
            throw new ArgumentException("the NCCL backend needs --device cuda.");
        var search = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        var lib = NcclLibrary.Load(o.NcclLibrary, search);
        var cudart = CudaRuntime.Load(null, search);
        if (control.Rank == 0)
            log($"NCCL {lib.VersionText} from {lib.Path}; CUDA runtime {cudart.RuntimeVersion} from {cudart.Path}");
        var factory = new NcclCollectiveFactory(lib, cudart, new NcclCollectiveOptions(TimeSpan.FromSeconds(o.TimeoutS), TimeSpan.FromSeconds(o.TimeoutS), TimeSpan.FromMilliseconds(100)));
        // The unique id travels over the control group, as the coordinator's message carries it in a cluster.
        using var idBytes = zeros(NcclUniqueId.Bytes, ScalarType.Byte);
        if (control.Rank == 0)
            idBytes.copy_(tensor(factory.CreateGroupId().Bytes));
        control.Broadcast(idBytes, 0);
        var id = new CollectiveGroupId(NcclCollective.BackendName, idBytes.data<byte>().ToArray());
        return (NcclCollective)factory.Join(id, control.Rank, control.WorldSize, device);
    }

    /// <summary>Times fp32 all-reduce (average) of buffers of the given sizes: ms per call and bus bandwidth.</summary>
    private static List<Dictionary<string, object?>> AllReduceSweep(DataParallelOptions o, ICollective c, Device device, Action<string> log)
    {
        var sizes = o.AllReduceMb.Length > 0 ? o.AllReduceMb : (o.Cuda ? [1.0, 16, 64, 256] : [0.25, 1, 4]);
        var rows = new List<Dictionary<string, object?>>();
        foreach (var mb in sizes)
        {
            long n = (long)(mb * (1 << 20) / 4);
            using var buf = ones(n, ScalarType.Float32, device);
            int reps = o.Cuda ? 20 : 5;
            for (int i = 0; i < 3; i++) c.AllReduce(buf, ReduceOp.Average);
            Sync(device);
            c.Barrier();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) c.AllReduce(buf, ReduceOp.Average);
            Sync(device);
            double ms = sw.Elapsed.TotalMilliseconds / reps;
            double bytes = n * 4.0;
            // Bus bandwidth as nccl-tests defines it for all-reduce: bytes × 2(n-1)/n per second.
            double busGBs = c.WorldSize > 1 ? bytes * 2 * (c.WorldSize - 1) / c.WorldSize / (ms / 1000) / 1e9 : 0;
            c.ThrowIfBroken();
            if (c.Rank == 0) log($"all-reduce {mb,8:0.##} MB: {ms,8:0.###} ms, bus {busGBs,7:0.0} GB/s");
            rows.Add(new() { ["mb"] = mb, ["ms"] = ms, ["bus_gb_s"] = busGBs });
        }
        return rows;
    }

    internal static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA)
            cuda.synchronize(device);
    }
}
