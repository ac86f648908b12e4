using System.Globalization;
using System.Runtime.CompilerServices;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Distributed;
using LiteVae.Actors.Data;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;
using LiteVae.Data;
using LiteVae.Data.Config;
using LiteVae.Data.Shards;
using LiteVae.Data.Transforms;
using LiteVae.Host.Config;
using LiteVae.Host.Distributed;
using LiteVae.Host.Inference;
using LiteVae.Host.Evaluation;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Evaluation;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;
using ActorRaw = LiteVae.Actors.Data.RawSample;

namespace LiteVae.Host.Node;

/// <summary>
/// Adapters from the actors' interfaces to the real pieces: the WebDataset shard reader and training
/// transform of src/Data, the LiteVaeTrainer and atomic checkpoint store of src/Model, and the held-out
/// evaluation of the training run (<see cref="RunEval"/>: the `litevae eval` job, at step 0 and per checkpoint).
/// </summary>
internal static class Adapters
{
    public static NodeServices Create(NodeOptions node, Func<RunPlan>? plan, NodeExtras extras) =>
        new(new CheckpointStoreAdapter(extras.DebugCheckpointFileDelayMs), () => new TrainerEngine(extras.WeightsFolder, node.Distributed), DataParts,
            request => new CheckpointEvalJob(request, extras.WeightsFolder), plan);

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
    private sealed class TrainerEngine(string? weights, DistributedSettings distributed) : ITrainingEngine, IDataParallelEngine
    {
        private readonly DataParallelRank _rank = new(distributed);
        private readonly int _groupSize = distributed.Group.Trainers;

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
            long parameters = autoencoder.parameters().Sum(p => p.numel());
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
            // In a data-parallel group every rank starts here; the step-0 baseline would be computed (and
            // written to the same files) once per rank, so groups rely on the checkpoints' evaluations.
            if (RunEval.Enabled(c) && _groupSize == 1) EvaluateInitialWeights(c, runDir, parameters);
            return new RestoredState(0, null);
        }

        /// <summary>
        /// The held-out evaluation before the first step (eval/step-00000000.*), so a run's gain is measured
        /// from where it started; the checkpoints' evaluations run on the Evaluator.
        /// </summary>
        private void EvaluateInitialWeights(ExperimentConfig c, string runDir, long parameters)
        {
            var reported = new ReportCheckpoint(c.Run.InitFrom is { } init ? $"initial weights (from {init})" : "initial weights (seed " +
                c.Trainer.Seed.ToString(CultureInfo.InvariantCulture) + ")", "(in memory)", 0, runDir, Path.Combine(runDir, "config.conf"));
            try
            {
                using var eval = RunEval.Start(c, _hocon, new TrainerReconstructor(_trainer!, c.Eval.UseEma), runDir, 0, reported, parameters, null, weights);
                var (report, json) = eval.Run();
                Console.WriteLine(RunEval.Describe(0, report, json));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or ConfigException)
            {
                // Training never depends on an evaluation (as on the Evaluator): say why and go on.
                Console.WriteLine($"eval step 0 failed: {e.Message} Training goes on; fix eval-data {{ }} for the checkpoints' evaluations.");
            }
        }

        public IReadOnlyDictionary<string, double>? TrainStep(PixelBatch batch, bool readLosses)
        {
            var trainer = _trainer ?? throw new InvalidOperationException("TrainStep before Initialize");
            if (_rank.InGroup)
                _rank.LeadStep(trainer, batch.Pixels, [batch.Count, 3, batch.Height, batch.Width]);   // rank 0 of a group
            else
                trainer.TrainStep(batch.Pixels, [batch.Count, 3, batch.Height, batch.Width]);
            if (!readLosses) return null;
            return trainer.ReadWindow().Means.ToDictionary(kv => kv.Key, kv => kv.Value);
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
            // The experiment text the run plan resolved (includes inlined, --set applied).
            return new Snapshot(_trainer!.Snapshot(_hocon, dataPosition, null, versions),
                new RetentionPolicy(c.Checkpoint.KeepLast, c.Checkpoint.KeepBest));
        }

        public int Rank => _rank.Rank;

        public IReadOnlyList<CollectiveAddress> CreateGroupAddresses(int worldSize) => _rank.CreateAddresses(Device);

        public void JoinGroup(long generation, int rank, int worldSize, IReadOnlyList<CollectiveAddress> addresses) =>
            _rank.Join(_trainer ?? throw new InvalidOperationException("join before Initialize"), _device!, _config!.Trainer.MicroBatches,
                rank, worldSize, addresses);

        public FollowerStep FollowStep() => _rank.FollowStep(_trainer!);

        public void EndGroup() => _rank.End();

        public void AbortGroup(string reason) => _rank.Abort(reason);

        public void Dispose()
        {
            _rank.Dispose();
            _trainer?.Dispose();
        }
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

        public IDisposable? Pin(string runDir, string checkpoint, string owner)
        {
            string checkpoints = Path.GetFullPath(Path.Combine(runDir, "checkpoints"));
            if (Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpoint))) != checkpoints)
                return null; // not one of this run's step directories: no retention touches it
            try
            {
                string pin = CheckpointStore.Pin(checkpoints, checkpoint, owner);
                return new PinHandle(pin);
            }
            catch (DirectoryNotFoundException e) { throw new CheckpointNotFoundException(e.Message); }
        }

        public void ClearPins(string runDir) => CheckpointStore.ClearPins(Path.Combine(runDir, "checkpoints"));

        private sealed class PinHandle(string path) : IDisposable
        {
            public void Dispose() => CheckpointStore.Unpin(path);
        }

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
    /// An eval job of the Evaluator: the <see cref="RunEval"/> of `litevae eval` on a checkpoint of the run,
    /// with the checkpoint's own config (never the flags) and weights (EMA when eval.use-ema), on the held-out
    /// images (or --data); reports go to the run's eval/ folder and TensorBoard. One batch per Step.
    /// </summary>
    private sealed class CheckpointEvalJob : IEvalJob
    {
        private readonly RunEval _eval;
        private readonly LiteAutoencoder _model;
        private readonly long _step;
        private EvalOutcome? _outcome;

        public CheckpointEvalJob(EvalProtocol.RunEvaluation request, string? weights)
        {
            var checkpoint = CheckpointDir.Open(request.CheckpointPath);
            var c = Bind(checkpoint.ConfigText, Path.Combine(request.CheckpointPath, CheckpointStore.ConfigFile));
            var source = CheckpointSource.Resolve(request.CheckpointPath, null, c.Eval.UseEma);
            _step = checkpoint.State.Step;
            var device = DeviceChoice.Parse(c.Run.Device);
            _model = source.Load(device, ScalarType.Float32);
            try
            {
                var reported = new ReportCheckpoint(source.Description, source.WeightsPath, _step, request.RunDir, source.ConfigPath);
                _eval = RunEval.Start(c, checkpoint.ConfigText, new AutoencoderReconstructor(_model, device), request.RunDir, _step, reported,
                    _model.parameters().Sum(p => p.numel()), request.Data, weights);
            }
            catch
            {
                _model.Dispose();
                throw;
            }
        }

        public bool Step() => _eval.Step();

        public EvalOutcome Finish()
        {
            if (_outcome is not null) return _outcome;
            var (report, json) = _eval.Finish();
            var metrics = EvalReport.MetricOrder.Where(report.Metrics.ContainsKey)
                .Select(name => new MetricValue(name, report.Metrics[name].Value, report.Metrics[name].Unavailable)).ToList();
            Console.WriteLine(RunEval.Describe(_step, report, json));
            return _outcome = new EvalOutcome(metrics, json, checked((int)report.Data.Images));
        }

        public void Dispose()
        {
            _eval.Dispose();
            _model.Dispose();
        }
    }
}
