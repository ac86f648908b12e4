using System.Globalization;
using System.Runtime.CompilerServices;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;
using LiteVae.Data;
using LiteVae.Data.Config;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;
using LiteVae.Host.Config;
using LiteVae.Host.Inference;
using LiteVae.Host.Training;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;
using ActorRaw = LiteVae.Actors.Data.RawSample;

namespace LiteVae.Host.Node;

/// <summary>
/// Adapters from the actors' interfaces to the real pieces: the WebDataset shard reader and training
/// transform of src/Data, the LiteVaeTrainer and atomic checkpoint store of src/Model, and the held-out
/// evaluation of the training run.
/// </summary>
internal static class Adapters
{
    public static NodeServices Create(NodeOptions node, Func<RunPlan>? plan, NodeExtras extras) =>
        new(new CheckpointStoreAdapter(extras.DebugCheckpointFileDelayMs), () => new TrainerEngine(extras.WeightsFolder), DataParts,
            request => new HeldOutEvalJob(request, extras.WeightsFolder), plan);

    public static ExperimentConfig Bind(string hocon, string source, IEnumerable<string>? overrides = null) =>
        ExperimentConfigBinder.Bind(HoconFile.Parse(hocon, source, overrides));

    /// <summary>The training shards by name (a tar path or URL each), as the Coordinator leases them.</summary>
    public static IReadOnlyList<string> TrainShards(ExperimentConfig c) =>
        ShardSpec.Resolve(c.Data.Source, c.Data.FolderShardSize).Select(s => s.Name).ToList();

    private static DataPipelineParts DataParts(string hocon)
    {
        var c = Bind(hocon, "experiment (from the coordinator)");
        return new DataPipelineParts(new DataShape(c.Data.BatchSize, c.Data.Resolution, c.Data.Resolution),
            new ShardReader(c.Data), new TransformDecoder(c.Data.CreateTransform(DataUse.Train)));
    }

    /// <summary>ShardReader stage: one WebDataset shard front to back (skipped samples cost a header read).</summary>
    private sealed class ShardReader(DataConfig data) : IShardReader
    {
        public async IAsyncEnumerable<ActorRaw> ReadAsync(ShardReadRequest request, ShardReadCounts counts, [EnumeratorCancellation] CancellationToken ct)
        {
            var source = ShardSpec.Resolve([request.Path], data.FolderShardSize).Single();
            long first = 0;
            while (request.Skip.Contains((int)first)) first++;
            var problems = new List<DataProblem>();
            var context = new ReadContext { Report = problems.Add, Cancellation = ct, OpenRetries = data.OpenRetries };
            long seen = first;
            foreach (var s in source.Read(first, context))
            {
                ActorRaw? item = null;
                using (s)
                {
                    ct.ThrowIfCancellationRequested();
                    int index = checked((int)s.IndexInShard);
                    seen = index + 1;
                    if (request.Skip.Contains(index)) continue;
                    if (s.Problem is { } p) { counts.AddBad(index, p.ToString()); continue; }
                    if (!s.HasImage) { counts.AddBad(index, $"{s.Key}: no image entry"); continue; }
                    item = new ActorRaw(new SampleId(request.Epoch, request.Shard, index), s.Key, s.Image.ToArray());
                }
                yield return item;
                await Task.Yield();
            }
            // A shard that yields nothing and reported problems could not be read at all: let the reader
            // actor restart (and then the lease go back), instead of calling an unreadable shard empty.
            if (seen == first && problems.Count > 0)
                throw new IOException(string.Join("; ", problems.Select(p => p.ToString())));
            foreach (var p in problems) counts.AddBad(checked((int)seen), p.ToString());
            counts.Total = checked((int)seen);
        }
    }

    /// <summary>DecodeAugment stage: the training transform, keyed by (seed, epoch, shard, sample) so a
    /// sample gets the same crop whichever node decodes it.</summary>
    private sealed class TransformDecoder(ISampleTransform transform) : ISampleDecoder
    {
        [ThreadStatic] private static TransformScratch? _scratch;

        public string? Decode(ActorRaw sample, long seed, Span<byte> destination)
        {
            var key = new SampleKey(seed, sample.Id.Epoch, ((long)sample.Id.Shard << 32) | (uint)sample.Id.Index);
            try
            {
                transform.Apply(sample.Encoded, key, destination, _scratch ??= new TransformScratch());
                return null;
            }
            catch (BadSampleException e)
            {
                return $"{sample.Key}: {e.Message}";
            }
        }
    }

    /// <summary>The LiteVaeTrainer behind the DeviceTrainer (built as the plain training loop builds it).</summary>
    private sealed class TrainerEngine(string? weights) : ITrainingEngine
    {
        private LiteVaeTrainer? _trainer;
        private ExperimentConfig? _config;
        private Device? _device;
        private string _hocon = "";

        public string Device => _device?.ToString() ?? "pending";
        public long Step => _trainer?.Step ?? 0;

        public RestoredState Initialize(string experimentHocon, string runDir, string? resumeFrom)
        {
            _hocon = experimentHocon;
            var c = _config = Bind(experimentHocon, Path.Combine(runDir, "config.conf"));
            _device = DeviceChoice.Parse(c.Run.Device);
            manual_seed(c.Trainer.Seed);
            var autoencoder = new LiteAutoencoder(c.Model);
            var discriminator = DiscriminatorFactory.Create(c.Discriminator);
            Lpips? lpips = null;
            if (c.Perceptual != PerceptualNet.None && c.Loss.PerceptualWeight > 0)
                lpips = PretrainedNetworks.LoadLpips(WeightsFolder.Resolve(weights), c.Perceptual == PerceptualNet.Vgg ? LpipsNet.Vgg : LpipsNet.Alex).Value;
            _trainer = new LiteVaeTrainer(autoencoder, discriminator, lpips, c.Loss, c.Trainer, _device);
            if (resumeFrom is not null)
            {
                var checkpoint = CheckpointDir.Open(resumeFrom);
                _trainer.Restore(checkpoint);
                return new RestoredState(_trainer.Step, checkpoint.State.DataPosition);
            }
            if (c.Run.InitFrom is { } init) _trainer.InitFrom(init);
            return new RestoredState(0, null);
        }

        public IReadOnlyDictionary<string, double>? TrainStep(PixelBatch batch, bool readLosses)
        {
            _trainer!.TrainStep(batch.Pixels, [batch.Count, 3, batch.Height, batch.Width]);
            if (!readLosses) return null;
            return _trainer.ReadWindow().Means.ToDictionary(kv => kv.Key, kv => kv.Value);
        }

        public ICheckpointSnapshot Snapshot(string dataPosition)
        {
            var c = _config!;
            var versions = new Dictionary<string, string>
            {
                ["litevae"] = typeof(Adapters).Assembly.GetName().Version?.ToString() ?? "?",
                ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
                ["data-path"] = "actors",
            };
            // The experiment text as given (c.ResolvedText does not re-parse: HoconFile.Render leaves
            // brace patterns unquoted).
            return new Snapshot(_trainer!.Snapshot(_hocon, dataPosition, null, versions),
                new RetentionPolicy(c.Checkpoint.KeepLast, c.Checkpoint.KeepBest));
        }

        public void Dispose() => _trainer?.Dispose();
    }

    private sealed class Snapshot(CheckpointSnapshot inner, RetentionPolicy retention) : ICheckpointSnapshot
    {
        public CheckpointSnapshot Inner => inner;
        public RetentionPolicy Retention => retention;
        public long Step => inner.State.Step;
        public void Dispose() => inner.Dispose();
    }

    /// <summary>The run directory's checkpoints/ through the atomic CheckpointStore.</summary>
    private sealed class CheckpointStoreAdapter(int debugFileDelayMs) : ICheckpointStore
    {
        public string Write(ICheckpointSnapshot snapshot, string runDir, string reason)
        {
            var s = (Snapshot)snapshot;
            Action<string>? afterFile = debugFileDelayMs > 0 ? _ => Thread.Sleep(debugFileDelayMs) : null;
            return CheckpointStore.Write(Path.Combine(runDir, "checkpoints"), s.Inner, s.Retention, afterFile);
        }

        public IReadOnlyList<CheckpointEntry> List(string runDir) =>
            CheckpointStore.List(Path.Combine(runDir, "checkpoints")).Select(c => new CheckpointEntry(c.Step, c.Path)).ToList();

        public string Resolve(string runDir, string spec)
        {
            var all = List(runDir);
            string Available() => string.Join(", ", all.Select(c => $"step-{c.Step}").DefaultIfEmpty("none"));
            if (spec == "last")
                return all.LastOrDefault()?.Path ?? throw new CheckpointNotFoundException($"no checkpoint in {runDir} yet");
            if (spec.StartsWith("step-", StringComparison.Ordinal))
            {
                if (!long.TryParse(spec[5..], NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                    throw new CheckpointNotFoundException($"'{spec}' is not last, step-N or a checkpoint directory");
                return all.FirstOrDefault(c => c.Step == step)?.Path
                       ?? throw new CheckpointNotFoundException($"no checkpoint '{spec}' in {runDir} (available: {Available()})");
            }
            if (!Directory.Exists(spec))
                throw new CheckpointNotFoundException($"no checkpoint '{spec}': not last, step-N or an existing directory (available: {Available()})");
            try { return CheckpointDir.Open(spec).Path; }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                throw new CheckpointNotFoundException($"'{spec}' is not a complete checkpoint: {e.Message}");
            }
        }
    }

    /// <summary>
    /// An eval job: the checkpoint's own config (never the flags), its weights, and the held-out images
    /// (or --data) reconstructed and scored; JSON and grid go to the run's eval/ folder.
    /// </summary>
    private sealed class HeldOutEvalJob(EvalProtocol.RunEvaluation request, string? weights) : IEvalJob
    {
        private EvalOutcome? _outcome;

        public bool Step()
        {
            var checkpoint = CheckpointDir.Open(request.CheckpointPath);
            var overrides = request.Data is null ? [] : new[] { $"eval-data.source = \"{request.Data}\"" };
            var c = Bind(checkpoint.ConfigText, Path.Combine(request.CheckpointPath, CheckpointStore.ConfigFile), overrides);
            var eval = HeldOutEval.Load(c) ?? throw new InvalidOperationException(
                "the experiment has no eval-data section (or eval.images = 0); pass --data <shards>");
            var device = DeviceChoice.Parse(c.Run.Device);
            using var trainer = new LiteVaeTrainer(new LiteAutoencoder(c.Model), null, null, c.Loss, c.Trainer, device);
            trainer.Restore(checkpoint);
            var r = eval.Run(trainer, RunDirectory.Open(request.RunDir), checkpoint.State.Step);
            const string later = "computed by `litevae eval` (standalone) for now";
            _outcome = new EvalOutcome(
            [
                new MetricValue("psnr", r.MeanPsnr, null), new MetricValue("psnr_min", r.MinPsnr, null),
                new MetricValue("psnr_max", r.MaxPsnr, null), new MetricValue("ssim", null, later),
                new MetricValue("lpips", null, later), new MetricValue("rfid", null, later),
            ], Path.ChangeExtension(r.GridPath, ".json"), r.Images);
            _ = weights;
            return false;
        }

        public EvalOutcome Finish() => _outcome ?? throw new InvalidOperationException("evaluation did not run");

        public void Dispose() { }
    }
}
