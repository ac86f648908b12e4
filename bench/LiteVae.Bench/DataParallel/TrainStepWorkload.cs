using LiteVae.Model.Distributed;
using static TorchSharp.torch;

namespace LiteVae.Bench.DataParallel;

/// <summary>The LiteVAE training step under data parallelism (needs the trainer of src/Model/Training).</summary>
internal static class TrainStepWorkload
{
    public static Dictionary<string, object?> Run(DataParallelOptions o, ICollective data, ICollective control, Device device, Action<string> log) =>
        throw new NotSupportedException("the train workload is wired to LiteVaeTrainer once the training code is merged; run --workloads check,allreduce.");
}
