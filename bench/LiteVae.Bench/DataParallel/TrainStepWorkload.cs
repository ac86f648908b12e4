using System.Diagnostics;
using LiteVae.Model;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Distributed;
using LiteVae.Model.Losses;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Bench.DataParallel;

/// <summary>
/// The LiteVAE training step as one rank of a data-parallel group: each rank takes its slice of every
/// global batch (synthetic bytes, the same on every rank), trains with averaged gradients, and reports
/// ms/step (timed window closed by the trainer's one sync, after a barrier), the all-reduce's own time
/// per step (extra steps with the device synchronised around each all-reduce, so the throughput window
/// is not slowed by those syncs), the host time spent producing its batch slice (the "data wait" of a
/// synthetic feed) and a final cross-rank weight comparison.
/// </summary>
internal static class TrainStepWorkload
{
    public static Dictionary<string, object?> Run(DataParallelOptions o, ICollective data, ICollective control, Device device, Action<string> log)
    {
        manual_seed(1);
        var ae = new LiteAutoencoder(Autoencoder(o.Model));
        IDiscriminator? disc = o.Discriminator == "none" ? null
            : new PatchGanDiscriminator(o.Model == "tiny" ? new PatchGanConfig(Ndf: 8, NLayers: 2) : new PatchGanConfig());
        Lpips? lpips = null;
        if (o.Model != "tiny")
        {
            // Random VGG weights: the same cost as the real LPIPS network (timing only).
            lpips = new Lpips(LpipsNet.Vgg);
            using (no_grad())
                foreach (var p in lpips.parameters()) p.normal_(0, 0.02);
        }
        var options = new TrainerOptions { Precision = PrecisionNames.Parse(o.Precision), ChannelsLast = device.type == DeviceType.CUDA, Seed = 1 };
        using var trainer = new LiteVaeTrainer(ae, disc, lpips, new LossConfig { DiscStart = 0 }, options, device);
        trainer.JoinGroup(data);

        var layout = DataParallelLayout.Equal(data.Rank, data.WorldSize, o.Batch, 1);
        var rng = new Random(5);
        var globals = Enumerable.Range(0, 2).Select(_ =>
        {
            var b = new byte[layout.GlobalBatch * 3 * o.Size * o.Size];
            rng.NextBytes(b);
            return b;
        }).ToArray();
        long[] shape = [o.Batch, 3, o.Size, o.Size];
        double sliceSeconds = 0;
        byte[] Slice(int i)
        {
            long t0 = Stopwatch.GetTimestamp();
            var mine = layout.SliceRows<byte>(globals[i % 2]);
            sliceSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            return mine;
        }

        for (int i = 0; i < o.Warmup; i++) trainer.TrainStep(Slice(i), shape);
        trainer.ReadWindow();
        control.Barrier();
        sliceSeconds = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < o.Steps; i++) trainer.TrainStep(Slice(i), shape);
        trainer.ReadWindow();   // the window's one sync
        double seconds = clock.Elapsed.TotalSeconds;
        double slice = sliceSeconds;

        // The all-reduce's own time: a few more steps with the device synchronised around it.
        int timed = Math.Min(o.Steps, 5);
        trainer.TimeCommunication = true;
        double before = trainer.CommunicationSeconds;
        for (int i = 0; i < timed; i++) trainer.TrainStep(Slice(i), shape);
        trainer.ReadWindow();
        double allReduce = (trainer.CommunicationSeconds - before) / timed;
        var check = data.WorldSize > 1 ? trainer.CheckReplicas() : null;
        if (data.Rank == 0)
            log($"{data.WorldSize} rank(s): {1000 * seconds / o.Steps:0.0} ms/step, all-reduce {1000 * allReduce:0.00} ms/step " +
                $"({trainer.GeneratorParameterCount / 1e6:0.0} M generator parameters), {check?.Describe() ?? "one rank"}");
        return new Dictionary<string, object?>
        {
            ["ms_per_step"] = 1000 * seconds / o.Steps,
            ["allreduce_ms_per_step"] = 1000 * allReduce,
            ["data_wait_ms_per_step"] = 1000 * slice / o.Steps,
            ["weights_identical"] = check?.Identical ?? true,
            ["generator_parameters"] = trainer.GeneratorParameterCount,
        };
    }

    /// <summary>A preset (s, b, m, l) with the reference decoder, or "tiny" for CPU runs.</summary>
    private static AutoencoderConfig Autoencoder(string model) => model == "tiny"
        ? new AutoencoderConfig(4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(8, 4, 3, [1, 1, 2, 2], 0, 0.0))
        : AutoencoderConfig.Preset(model, 12);
}
