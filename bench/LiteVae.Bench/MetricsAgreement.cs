using System.Diagnostics;
using System.Globalization;
using System.Text;
using LiteVae.Actors.Telemetry;
using LiteVae.Data.Config;
using LiteVae.Data.Pipeline;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace LiteVae.Bench;

/// <summary>
/// Part of tracing-overhead: do the exported data-wait and queue-depth metrics tell the truth? The real
/// data pipeline feeds a trainer stand-in (a fixed sleep per step), measured as the pipeline benchmark
/// measures it (a stopwatch around taking each batch; the batch queue's length sampled directly).
/// The same run is exported through the OpenTelemetry SDK (in-memory exporter, so the numbers pass
/// through the real aggregation); the two views must agree, in two regimes: a consumer faster than the
/// pipeline (it waits, the batch queue is near empty) and a slower one (no wait, the queue full).
/// </summary>
internal static class MetricsAgreement
{
    public sealed record Regime(string Name, int StepMs, double WaitFractionMeasured, double WaitFractionMetric,
        double WaitSumMeasured, double WaitSumMetric, long StepsMeasured, long StepsMetric,
        double QueueMeanSampled, double QueueMeanMetric, int QueueCapacity);

    public static List<Regime> Run(IReadOnlyList<string> shards, int steps, int batch, int resolution, int fastMs, int slowMs)
    {
        var result = new List<Regime>();
        foreach (var (name, ms) in new[] { ("fast consumer (data-bound)", fastMs), ("slow consumer (compute-bound)", slowMs) })
            result.Add(RunRegime(name, shards, steps, batch, resolution, ms));
        return result;
    }

    private static Regime RunRegime(string name, IReadOnlyList<string> shards, int steps, int batch, int resolution, int stepMs)
    {
        var telemetry = new LiteVaeTelemetry();
        var exported = new List<Metric>();
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter(telemetry.Meter.Name)
            .AddInMemoryExporter(exported, o => o.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = int.MaxValue)
            .Build();
        // The provider listens to every meter named LiteVae; tell ours apart by reading it alone below.
        var config = new DataConfig { Source = shards, Resolution = resolution, BatchSize = batch, DecodeWorkers = 2, Readers = 2 };
        var options = config.CreatePipelineOptions(config.LoadIndex(_ => { }), DataUse.Train) with { Prefetch = 4 };

        return Task.Run(async () =>
        {
            await using var pipeline = DataPipeline.Start(options);
            using var observed = PipelineTelemetry.Observe(pipeline, "bench", telemetry);
            using var stop = new CancellationTokenSource();
            var asking = Task.Run(async () =>
            {
                try { for (long start = 0; ; start += batch) await pipeline.RequestAsync(start, batch, stop.Token); }
                catch (OperationCanceledException) { }
            });
            var reader = pipeline.Batches;
            // Warm up: the first batches include opening shards and JIT.
            for (int i = 0; i < 3; i++) (await Take(reader)).Dispose();

            var sampled = new List<long>();
            var fromMetric = new List<long>();
            double waitSum = 0;
            var wall = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++)
            {
                long t0 = Stopwatch.GetTimestamp();
                var b = await Take(reader);
                double wait = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                waitSum += wait;
                using (b)
                {
                    long t1 = Stopwatch.GetTimestamp();
                    Thread.Sleep(stepMs);   // the "training step"
                    telemetry.RecordStep(Stopwatch.GetElapsedTime(t1).TotalSeconds, wait, b.Count);
                }
                // The queue as the pipeline benchmark sees it, and as the exported gauge reports it, at the same moment.
                sampled.Add(reader.Count);
                exported.Clear();
                provider.ForceFlush();
                fromMetric.Add(GaugeValue(exported, "litevae.data.queue.depth", "batch"));
            }
            double wallSeconds = wall.Elapsed.TotalSeconds;
            stop.Cancel();
            await asking;
            exported.Clear();
            provider.ForceFlush();
            var (sum, count) = Histogram(exported, "litevae.data.batch.wait");
            // Cumulative temporality: the warm-up batches were not recorded, so sum and count cover the timed steps only.
            return new Regime(name, stepMs, waitSum / wallSeconds, sum / wallSeconds, waitSum, sum, steps, count,
                sampled.Average(), fromMetric.Average(), options.Prefetch);
        }).GetAwaiter().GetResult();
    }

    private static async Task<Batch> Take(System.Threading.Channels.ChannelReader<Batch> reader)
    {
        while (true)
        {
            if (reader.TryRead(out var b)) return b;
            if (!await reader.WaitToReadAsync()) throw new InvalidOperationException("the data pipeline ended early; give more shards or fewer steps.");
        }
    }

    private static long GaugeValue(List<Metric> metrics, string name, string stage)
    {
        foreach (var m in metrics.Where(m => m.Name == name))
            foreach (ref readonly var p in m.GetMetricPoints())
                foreach (var tag in p.Tags)
                    if (tag.Key == TelemetryTags.Stage && (string?)tag.Value == stage)
                        return p.GetGaugeLastValueLong();
        throw new InvalidOperationException($"{name} for stage {stage} was not exported.");
    }

    private static (double Sum, long Count) Histogram(List<Metric> metrics, string name)
    {
        double sum = 0;
        long count = 0;
        foreach (var m in metrics.Where(m => m.Name == name))
            foreach (ref readonly var p in m.GetMetricPoints())
            {
                sum += p.GetHistogramSum();
                count += p.GetHistogramCount();
            }
        return (sum, count);
    }

    public static void Report(StringBuilder report, IReadOnlyList<Regime> regimes)
    {
        var ci = CultureInfo.InvariantCulture;
        report.AppendLine();
        report.AppendLine("## Do the metrics agree with what the pipeline benchmark measures?");
        report.AppendLine();
        report.AppendLine("Real data pipeline (bundled sample shards), trainer stand-in sleeping per step; measured directly " +
                          "(stopwatch around taking a batch, batch-queue length sampled after each step) vs the same run " +
                          "exported through the OpenTelemetry SDK (`litevae.data.batch.wait` histogram, `litevae.data.queue.depth{stage=batch}` gauge).");
        report.AppendLine();
        report.AppendLine("| consumer | step | data wait, measured | data wait, metric | steps measured / in histogram | batch queue, sampled | batch queue, metric | capacity |");
        report.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in regimes)
            report.AppendLine(ci, $"| {r.Name} | {r.StepMs} ms | {r.WaitFractionMeasured * 100:F1}% ({r.WaitSumMeasured:F3} s) | " +
                                  $"{r.WaitFractionMetric * 100:F1}% ({r.WaitSumMetric:F3} s) | {r.StepsMeasured} / {r.StepsMetric} | " +
                                  $"{r.QueueMeanSampled:F2} | {r.QueueMeanMetric:F2} | {r.QueueCapacity} |");
    }

    /// <summary>The checks: sums equal (same numbers through the SDK), queue means within half a batch.</summary>
    public static List<string> Problems(IReadOnlyList<Regime> regimes)
    {
        var problems = new List<string>();
        foreach (var r in regimes)
        {
            if (r.StepsMeasured != r.StepsMetric) problems.Add($"{r.Name}: {r.StepsMeasured} steps but {r.StepsMetric} in the histogram");
            if (Math.Abs(r.WaitSumMeasured - r.WaitSumMetric) > 1e-6 * Math.Max(1, r.WaitSumMeasured))
                problems.Add($"{r.Name}: wait sum {r.WaitSumMeasured} measured vs {r.WaitSumMetric} exported");
            if (Math.Abs(r.QueueMeanSampled - r.QueueMeanMetric) > 0.5)
                problems.Add($"{r.Name}: batch queue mean {r.QueueMeanSampled:F2} sampled vs {r.QueueMeanMetric:F2} exported");
        }
        return problems;
    }
}
