using LiteVae.Actors.Distributed;
using LiteVae.Actors.Protocol;
using LiteVae.Data.Pipeline;
using LiteVae.Model;
using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Distributed;
using LiteVae.Model.Perceptual;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Actors.Training;

/// <summary>
/// The real engine behind a DeviceTrainer: the <see cref="LiteVaeTrainer"/> of src/Model, built from the
/// experiment, restored from a checkpoint or initialised from other weights; and, in a data-parallel group,
/// this process's <see cref="DataParallelRank"/>.
/// </summary>
public sealed class LiteVaeEngine(ExperimentBinder bind, WeightFiles weights, CollectiveSettings collectives)
    : ITrainingEngine, IDataParallelEngine
{
    private readonly DataParallelRank _rank = new(collectives);

    private LiteVaeTrainer? _trainer;
    private ExperimentConfig? _config;
    private Device? _device;
    private string _hocon = "";

    public string Device => _device?.ToString() ?? "pending";
    public long Step => _trainer?.Step ?? 0;

    public RestoredState Initialize(string experimentHocon, string runDir, string? resumeFrom)
    {
        _hocon = experimentHocon;
        var c = _config = bind(experimentHocon, Path.Combine(runDir, CheckpointStore.ConfigFile));
        _device = DeviceChoice.Parse(c.Run.Device);
        manual_seed(c.Trainer.Seed);
        var autoencoder = new LiteAutoencoder(c.Model);
        var discriminator = DiscriminatorFactory.Create(c.Discriminator);
        Lpips? lpips = null;
        if (c.Perceptual != PerceptualNet.None && c.Loss.PerceptualWeight > 0)
        {
            var loaded = PretrainedNetworks.LoadLpips(weights, c.Perceptual == PerceptualNet.Vgg ? LpipsNet.Vgg : LpipsNet.Alex);
            // Training without a loss term the recipe asks for would quietly train another model.
            lpips = loaded.Value ?? throw new InvalidOperationException(
                $"the perceptual loss (loss.perceptual = {c.Perceptual.ToString().ToLowerInvariant()}) needs its weight files: {loaded.Reason} " +
                "Get them with `litevae weights list` (it says where to download them and `litevae weights convert` turns them into " +
                "safetensors), or train without the term: --set loss.perceptual=none.");
        }
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

    public IReadOnlyDictionary<string, double>? TrainStep(Batch batch, bool readLosses)
    {
        var trainer = _trainer ?? throw new InvalidOperationException("TrainStep before Initialize");
        long[] shape = [batch.Count, 3, batch.Height, batch.Width];
        if (_rank.InGroup)
            _rank.LeadStep(trainer, batch.Pixels.Span, shape);   // rank 0 of a group
        else
            trainer.TrainStep(batch.Pixels.Span, shape);
        if (!readLosses) return null;
        var window = trainer.ReadWindow();
        SkippedSteps = window.TotalSkipped;
        return window.Means.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    public long SkippedSteps { get; private set; }

    public ICheckpointSnapshot Snapshot(string dataPosition)
    {
        var c = _config!;
        var versions = new Dictionary<string, string>
        {
            ["litevae"] = typeof(LiteVaeEngine).Assembly.GetName().Version?.ToString() ?? "?",
            ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
        };
        // The experiment text the run plan resolved (includes inlined, --set applied).
        return new RunCheckpoints.Snapshot(_trainer!.Snapshot(_hocon, dataPosition, null, versions),
            new RetentionPolicy(c.Checkpoint.KeepLast, c.Checkpoint.KeepBest));
    }

    public int Rank => _rank.Rank;

    public IReadOnlyList<CollectiveAddress> CreateGroupAddresses(int worldSize)
    {
        var ids = _rank.CreateAddresses(Device);
        return [new("control", ids.Control.Backend, ids.Control.Bytes), new("data", ids.Data.Backend, ids.Data.Bytes)];
    }

    public void JoinGroup(long generation, int rank, int worldSize, IReadOnlyList<CollectiveAddress> addresses)
    {
        CollectiveGroupId Id(string role) => addresses.SingleOrDefault(a => a.Role == role) is { } a
            ? new CollectiveGroupId(a.Backend, a.Bytes)
            : throw new ArgumentException($"the group has no {role} address.");
        _rank.Join(_trainer ?? throw new InvalidOperationException("join before Initialize"), _device!, _config!.Trainer.MicroBatches,
            rank, worldSize, new GroupIds(Id("control"), Id("data")));
    }

    public FollowerStep FollowStep() => _rank.FollowStep(_trainer!);

    public void EndGroup() => _rank.End();

    public void AbortGroup(string reason) => _rank.Abort(reason);

    public void Dispose()
    {
        _rank.Dispose();
        _trainer?.Dispose();
    }
}
