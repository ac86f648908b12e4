using LiteVae.Model.Checkpoints;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Distributed;
using LiteVae.Model.Losses;
using LiteVae.Model.Perceptual;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>What one log window produced, read with one device→host transfer.</summary>
/// <param name="Means">Mean of each logged term over the window (g/… generator, d/… discriminator).</param>
/// <param name="SkippedSteps">Steps of this window whose update was skipped (NaN/Inf gradients).</param>
public sealed record TrainingWindow(long FirstStep, long EndStep, IReadOnlyList<KeyValuePair<string, double>> Means,
    IReadOnlyList<long> SkippedSteps, long TotalSkipped);

/// <summary>
/// The LiteVAE training step, owned by one thread (the DeviceTrainer actor's pinned thread, or the
/// plain loop): synchronous calls, one dispose scope per step, no GPU→CPU synchronisation except in
/// <see cref="ReadWindow"/> (once per log window), <see cref="Snapshot"/> and evaluation.
///
/// A step: upload uint8 pixels (pinned, non-blocking) and map to [-1, 1] on the device; generator step
/// (encode, sample with a generator seeded from (seed, step), decode, loss, backward per micro-batch;
/// D frozen), then the discriminator step on the SAME reconstructions, detached (no second autoencoder
/// forward, unlike the reference, whose D sees a fresh sample). Each model keeps its weights in flat
/// buffers with an fp32 master, a fused Adam, the NaN/Inf guard (a bad step is skipped on the device)
/// and optional clipping; the autoencoder optionally keeps an EMA.
/// </summary>
public sealed class LiteVaeTrainer : IDisposable
{
    private readonly LiteAutoencoder _autoencoder;
    private readonly IDiscriminator? _discriminator;
    private readonly Lpips? _lpips;
    private readonly LiteVaeLoss _loss;
    private readonly TrainerOptions _options;
    private readonly Device _device;
    private readonly ScalarType _dtype;

    private readonly MasterWeights _g;
    private readonly FusedAdam _gAdam;
    private readonly MasterWeights? _d;
    private readonly FusedAdam? _dAdam;
    private readonly List<Parameter> _dParameters = [];
    private readonly Ema? _ema;
    private readonly DynamicLossScale? _gScale;
    private readonly DynamicLossScale? _dScale;

    private readonly StepRandom _random;
    private readonly InputStaging _staging;
    private readonly WindowStats _window = new();
    private readonly SkippedStepLog _skipped;
    private long _windowStart;

    // Data parallelism (null: one rank). See JoinGroup.
    private ICollective? _collective;
    private int _weightCheckEvery;
    private long _bucketElements;

    /// <param name="autoencoder">Built and loaded on the CPU in fp32 (or already on <paramref name="device"/>).</param>
    /// <param name="discriminator">Null or "none" for phase A.</param>
    /// <param name="lpips">Loaded LPIPS, or null when no weights are available (the term is off).</param>
    public LiteVaeTrainer(LiteAutoencoder autoencoder, IDiscriminator? discriminator, Lpips? lpips, LossConfig lossConfig,
        TrainerOptions options, Device device)
    {
        var problems = options.Problems().ToList();
        if (problems.Count > 0)
            throw new ArgumentException("trainer options: " + string.Join("; ", problems.Select(p => $"{p.Key} {p.Problem}")));
        _options = options;
        _device = device;
        _dtype = options.Precision.ComputeType();
        _autoencoder = autoencoder;
        _discriminator = discriminator is { Type: not "none" } ? discriminator : null;

        // Device discipline: move first, then flatten (which also converts to the compute dtype), then
        // build the optimizers on the flat buffers.
        autoencoder.to(device);
        autoencoder.train();
        _g = MasterWeights.Create(autoencoder, options.Precision, options.ChannelsLastFor);
        if (options.ChannelsLast) ChannelsLastBuffers(autoencoder, options.ChannelsLastFor);
        _gAdam = new FusedAdam(_g.Params, _g.Grads, options.Adam);
        if (options.Ema)
            _ema = new Ema(_g.Params, options.EmaDecay);
        if (_discriminator is not null)
        {
            var dm = _discriminator.Module;
            dm.to(device);
            dm.train();
            _d = MasterWeights.Create(dm, options.Precision, options.ChannelsLast);
            if (options.ChannelsLast) ChannelsLastBuffers(dm, _ => true);
            _dAdam = new FusedAdam(_d.Params, _d.Grads, options.Adam with { Lr = options.Adam.Lr * options.DiscLrRatio });
            _dParameters.AddRange(dm.parameters().Where(p => p.requires_grad));
        }
        if (lpips is not null && lossConfig.PerceptualWeight > 0)
        {
            lpips.to(device);
            if (_dtype != ScalarType.Float32) lpips.to(_dtype);
            if (options.ChannelsLast)
            {
                MemoryLayout.ConvertToChannelsLast(lpips); // frozen: no flat buffers, re-laid in place
                ChannelsLastBuffers(lpips, _ => true);
            }
            lpips.eval();
            _lpips = lpips;
        }
        _loss = new LiteVaeLoss(lossConfig, _lpips, device);
        if (options.Precision == Precision.Fp16)
        {
            _gScale = new DynamicLossScale(device, options.InitialLossScale);
            if (_d is not null) _dScale = new DynamicLossScale(device, options.InitialLossScale);
        }
        _random = new StepRandom(options.Seed, device);
        _staging = new InputStaging(device);
        _skipped = new SkippedStepLog(options.MaxConsecutiveBadSteps);
    }

    /// <summary>Completed steps; the next <see cref="TrainStep"/> runs step number <see cref="Step"/>.</summary>
    public long Step { get; private set; }

    public TrainerOptions Options => _options;
    public LiteVaeLoss Loss => _loss;
    public Device Device => _device;
    public bool HasDiscriminator => _discriminator is not null;
    public bool PerceptualEnabled => _loss.PerceptualEnabled;
    public long GeneratorParameterCount => _g.Slots.Sum(s => s.Numel);

    /// <summary>Profiling runs only: times the phases of each step (every phase boundary is a GPU sync).</summary>
    public StepProfiler? Profiler { get; set; }

    /// <summary>Test hook: sees the generator's fp32 flat gradient before the guard (e.g. to inject a NaN).</summary>
    public Action<long, Tensor>? GradientHook { get; set; }

    /// <summary>
    /// One training step on a uint8 batch (N×3×H×W, row-major host bytes), split into
    /// <see cref="TrainerOptions.MicroBatches"/> micro-batches (near-equal when N does not divide). In a
    /// data-parallel group the rows are this rank's equal part of a global batch. Returns without waiting for the GPU.
    /// </summary>
    public void TrainStep(ReadOnlySpan<byte> pixels, long[] shape)
    {
        if (shape.Length != 4) throw new ArgumentException($"batch of shape [{string.Join(", ", shape)}]: expected N×3×H×W.");
        int n = checked((int)shape[0]), micro = _options.MicroBatches;
        var layout = _collective is { WorldSize: > 1 } c
            ? n % micro == 0 ? DataParallelLayout.Equal(c.Rank, c.WorldSize, n / micro, micro)
                : throw new ArgumentException($"a rank's {n} rows cannot be {micro} equal micro-batches; pass the step's layout.")
            : DataParallelLayout.Single(n, micro);
        TrainStep(pixels, shape, layout);
    }

    /// <summary>One training step on this rank's rows of a global batch split as <paramref name="layout"/> says
    /// (<see cref="DataParallelLayout.SliceRows"/>): micro-batch by micro-batch, each loss weighted by its share.</summary>
    public void TrainStep(ReadOnlySpan<byte> pixels, long[] shape, DataParallelLayout layout)
    {
        long step = Step;
        int micro = layout.Accumulation;
        if (shape.Length != 4 || shape[0] != layout.PerRankBatch || layout.Rank != (_collective?.Rank ?? 0) || layout.WorldSize != (_collective?.WorldSize ?? 1))
            throw new ArgumentException($"batch of shape [{string.Join(", ", shape)}] does not fit rank {layout.Rank} of {layout.WorldSize} " +
                                        $"with {layout.PerRankBatch} rows in {micro} micro-batch(es).");
        var rows = Enumerable.Range(0, micro).Select(m => layout.RankPart(m).Count).ToArray();
        var firstRow = new int[micro];
        for (int m = 1; m < micro; m++) firstRow[m] = firstRow[m - 1] + rows[m - 1];
        var prof = Profiler;
        prof?.BeginStep();
        using var scope = NewDisposeScope();
        var bytes = _staging.Upload(pixels, shape);
        var x32 = InputStaging.ToSigned(bytes, ScalarType.Float32, _options.InputChannelsLast);
        var x = _dtype == ScalarType.Float32 ? x32 : x32.to_type(_dtype);
        bool adversarial = _loss.AdversarialActive(step, _discriminator);
        prof?.Mark("upload");

        // ---- generator step (D frozen) ----
        bool freeze = adversarial && _options.DiscriminatorFreeze == DiscriminatorFreeze.RequiresGrad;
        if (freeze)
            SetDiscriminatorTrainable(false);
        _g.ZeroGrad();
        var fakes = new Tensor?[micro];
        var lastLayer = _loss.Config.Weighting == AdversarialWeighting.Adaptive ? _autoencoder.DecoderModule.LastLayerWeight : null;
        for (int m = 0; m < micro; m++)
        {
            if (rows[m] == 0) continue;   // a short global batch left this rank nothing of micro-batch m
            var xm = x.narrow(0, firstRow[m], rows[m]);
            var x32m = x32.narrow(0, firstRow[m], rows[m]);
            // Encode → sample (noise from the (seed, step) generator) → decode: Reconstruct's steps,
            // spelled out so a profiler can time encoder and decoder apart.
            using var posterior = _autoencoder.Encode(xm);
            // Under data parallelism every rank draws the global micro-batch's noise and keeps its rows.
            var z = layout.WorldSize > 1
                ? posterior.Sample(_random.For(step, $"posterior/{m}"), layout.Micro(m).Count, layout.RankPart(m).Offset)
                : posterior.Sample(_random.For(step, $"posterior/{m}"));
            prof?.Mark("encoder");
            var reconstruction = _autoencoder.Decode(z);
            prof?.Mark("decoder");
            var g = _loss.Generator(x32m, xm, reconstruction, posterior, adversarial ? _discriminator : null, lastLayer, prof);
            var scaled = g.Total * layout.Scale(m);
            if (_gScale is not null) scaled = _gScale.ScaleLoss(scaled);
            scaled.backward();
            prof?.Mark("g_backward");
            _window.AddAll(g.Terms, "g/");
            fakes[m] = reconstruction.detach();
        }
        var gOk = FinishUpdate(_g, _gAdam, _gScale, step, "g/", GradientHook);
        _ema?.Update();
        prof?.Mark("g_optimizer");

        // ---- discriminator step on the same reconstructions ----
        Tensor? dOk = null;
        if (adversarial)
        {
            if (freeze)
                SetDiscriminatorTrainable(true);
            _d!.ZeroGrad();
            for (int m = 0; m < micro; m++)
            {
                if (fakes[m] is not { } fake) continue;
                var xm = x.narrow(0, firstRow[m], rows[m]);
                var d = _loss.Discriminator(xm, fake, _discriminator!);
                prof?.Mark("d_forward");
                var scaled = d.Total * layout.Scale(m);
                if (_dScale is not null) scaled = _dScale.ScaleLoss(scaled);
                scaled.backward();
                prof?.Mark("d_backward");
                _window.AddAll(d.Terms, "d/");
            }
            dOk = FinishUpdate(_d, _dAdam!, _dScale, step, "d/", null);
            prof?.Mark("d_optimizer");
        }

        _skipped.Add(step, dOk is null ? gOk : gOk * dOk);
        Step = step + 1;
        if (_collective is not null && _weightCheckEvery > 0 && Step % _weightCheckEvery == 0)
            CheckReplicas();
        prof?.EndStep();
    }

    // ---------------------------------------------------------------- data parallelism

    /// <summary>The group this trainer is a rank of (null: training alone).</summary>
    public ICollective? Collective => _collective;

    /// <summary>Host seconds spent in gradient all-reduces (exact device time only with <see cref="TimeCommunication"/>).</summary>
    public double CommunicationSeconds { get; private set; }

    /// <summary>Benchmarks: wait for the device before and after each gradient all-reduce, so
    /// <see cref="CommunicationSeconds"/> is the all-reduce's own time (costs two syncs per update).</summary>
    public bool TimeCommunication { get; set; }

    /// <summary>The last cross-rank weight comparison (null before the first).</summary>
    public WeightCheck? LastWeightCheck { get; private set; }

    /// <summary>
    /// Makes this trainer rank <c>collective.Rank</c> of a data-parallel group. Every rank passes its
    /// slice of each global batch to <see cref="TrainStep"/> (<see cref="DataParallelLayout"/>: micro-batch
    /// major, equal sizes); gradients of G and D are averaged over the ranks before the guard and the
    /// optimizer, so every rank applies the same update, and the posterior noise of a sample is the same
    /// whatever the number of ranks. Rank 0's whole state (weights, EMA, Adam moments, loss scales, step)
    /// is broadcast now, so all ranks start identical even if only rank 0 restored a checkpoint.
    /// Every <paramref name="weightCheckEvery"/> steps (0 = never) the ranks compare weight checksums and
    /// a divergence throws <see cref="WeightDivergenceException"/>. Collective failures surface as
    /// <see cref="CollectiveException"/> from <see cref="TrainStep"/>: the state is then garbage; reload
    /// the last checkpoint (<see cref="Restore"/>) and join the next group.
    /// </summary>
    /// <param name="bucketElements">All-reduce the flat gradient in pieces of this many elements (one grouped
    /// call); 0 = the whole buffer as one piece.</param>
    public void JoinGroup(ICollective collective, int weightCheckEvery = 0, long bucketElements = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(weightCheckEvery);
        ArgumentOutOfRangeException.ThrowIfNegative(bucketElements);
        _collective = collective;
        _weightCheckEvery = weightCheckEvery;
        _bucketElements = bucketElements;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var t in ReplicatedState())
        {
            if (t.device == _device)
            {
                collective.Broadcast(t, 0);
                continue;
            }
            // State kept on the host (small counters) travels through the device: NCCL only moves device memory.
            var onDevice = t.to(_device);
            collective.Broadcast(onDevice, 0);
            t.copy_(onDevice);
        }
        // On the training device: NCCL only moves device memory.
        var counters = tensor(new[] { Step, _ema?.Updates ?? 0, _skipped.TotalSkipped }, device: _device);
        collective.Broadcast(counters, 0);
        var host = counters.cpu().data<long>().ToArray();
        Step = _windowStart = host[0];
        if (_ema is not null) _ema.Updates = host[1];
        _skipped.TotalSkipped = host[2];
        _g.PublishWeights();
        _d?.PublishWeights();
    }

    /// <summary>Trains alone again (after the group broke; the collective is not disposed here).</summary>
    public void LeaveGroup() => _collective = null;

    /// <summary>Compares weight checksums across the ranks now; throws <see cref="WeightDivergenceException"/> on a mismatch.</summary>
    public WeightCheck CheckReplicas()
    {
        var c = _collective ?? throw new InvalidOperationException("this trainer is not in a data-parallel group.");
        var buffers = new List<Tensor> { _g.Params };
        if (_d is not null) buffers.Add(_d.Params);
        if (_ema is not null) buffers.Add(_ema.Shadow);
        var check = WeightConsistency.Check(c, buffers.ToArray());
        LastWeightCheck = check;
        if (!check.Identical)
            throw new WeightDivergenceException($"step {Step}: {check.Describe()}");
        return check;
    }

    /// <summary>Everything that must be equal on all ranks, as contiguous device tensors.</summary>
    private IEnumerable<Tensor> ReplicatedState()
    {
        yield return _g.Params;
        yield return _gAdam.ExpAvg;
        yield return _gAdam.ExpAvgSq;
        yield return _gAdam.StepCount;
        if (_ema is not null) yield return _ema.Shadow;
        if (_gScale is not null) foreach (var (_, v) in _gScale.State()) yield return v;
        if (_d is not null)
        {
            yield return _d.Params;
            yield return _dAdam!.ExpAvg;
            yield return _dAdam.ExpAvgSq;
            yield return _dAdam.StepCount;
            if (_dScale is not null) foreach (var (_, v) in _dScale.State()) yield return v;
        }
    }

    /// <summary>Averages a flat fp32 gradient over the ranks, in place (one collective call).</summary>
    private void AverageGradients(Tensor grads)
    {
        if (_collective is not { } c) return;
        bool sync = TimeCommunication && _device.type == DeviceType.CUDA;
        if (sync) cuda.synchronize(_device);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        GradientAllReduce.Average(c, grads, _bucketElements);
        if (sync) cuda.synchronize(_device);
        CommunicationSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    /// <summary>
    /// Re-lays a module's 4-D buffers (e.g. the fixed DWT filters) as channels-last, in place. Trainable
    /// weights get channels-last slots from <see cref="FlatParameters"/>.
    /// </summary>
    private static void ChannelsLastBuffers(nn.Module module, Func<string, bool> which)
    {
        using var _ = no_grad();
        foreach (var (name, b) in module.named_buffers())
            if (b.dim() == 4 && which(name) && !MemoryLayout.IsChannelsLast(b))
                using (var cl = MemoryLayout.ToChannelsLast(b)) b.set_(cl);
    }

    /// <summary>Gather → guard → (skip-aware) Adam → publish; returns the device ok flag.</summary>
    private Tensor FinishUpdate(MasterWeights w, FusedAdam adam, DynamicLossScale? scale, long step, string prefix, Action<long, Tensor>? hook)
    {
        w.GatherGrads();
        AverageGradients(w.Grads);   // before the guard: every rank then takes the same skip/clip decisions
        if (scale is not null) scale.Unscale(w.Grads);
        hook?.Invoke(step, w.Grads);
        var check = GradientGuard.Check(w.Grads, _options.ClipGradNorm);
        adam.Step(check.Ok);
        w.PublishWeights();
        scale?.Update(check.Ok);
        _window.Add(prefix + "grad_norm", check.Norm.nan_to_num(0.0, 0.0, 0.0));
        return check.Ok;
    }

    private void SetDiscriminatorTrainable(bool on)
    {
        foreach (var p in _dParameters) p.requires_grad = on;
    }

    /// <summary>
    /// Ends the log window: means of every term, skipped steps (named), learning rates. This is the one
    /// synchronisation of a window. Throws <see cref="NonFiniteGradientException"/> after too many bad
    /// steps in a row.
    /// </summary>
    public TrainingWindow ReadWindow()
    {
        var means = _window.Flush();
        means.Add(new("lr/generator", _gAdam.Options.Lr));
        if (_dAdam is not null) means.Add(new("lr/discriminator", _dAdam.Options.Lr));
        if (_gScale is not null) means.Add(new("g/loss_scale", _gScale.Scale.item<float>()));
        var skipped = _skipped.Flush();
        var window = new TrainingWindow(_windowStart, Step, means, skipped, _skipped.TotalSkipped);
        _windowStart = Step;
        return window;
    }

    /// <summary>
    /// Reconstructions (posterior mode) of uint8 images as uint8, on the CPU; with the EMA weights when
    /// <paramref name="useEma"/> and EMA is on. Evaluation mode, no gradients; training state untouched.
    /// </summary>
    public Tensor Reconstruct(ReadOnlySpan<byte> pixels, long[] shape, bool useEma = false)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor? backup = null;
        if (useEma && _ema is not null)
        {
            backup = _g.Params.clone();
            _g.Params.copy_(_ema.Shadow);
            _g.PublishWeights();
        }
        _autoencoder.eval();
        try
        {
            var bytes = _staging.Upload(pixels, shape);
            var x = InputStaging.ToSigned(bytes, _dtype, _options.InputChannelsLast);
            var (rec, posterior) = _autoencoder.Reconstruct(x, samplePosterior: false);
            posterior.Dispose();
            var u8 = rec.to_type(ScalarType.Float32).clamp_(-1, 1).add_(1).mul_(127.5).round_().to_type(ScalarType.Byte).cpu().contiguous();
            return scope.MoveToOuter(u8);
        }
        finally
        {
            _autoencoder.train();
            if (backup is not null)
            {
                _g.Params.copy_(backup);
                _g.PublishWeights();
            }
        }
    }

    /// <summary>
    /// Copies everything a resume needs to the CPU (one transfer per flat buffer) and returns it as a
    /// snapshot for the checkpoint writer thread. Key names: model.safetensors encoder.* / decoder.*
    /// (reference names, fp32 master), ema.safetensors (same names, EMA weights), discriminator.safetensors
    /// loss.discriminator.*, optimizer.safetensors generator.* / discriminator.* Adam moments per parameter.
    /// </summary>
    public CheckpointSnapshot Snapshot(string configText, string? dataPosition, CheckpointMetric? metric,
        IReadOnlyDictionary<string, string>? versions = null)
    {
        var state = new TrainerState
        {
            Step = Step,
            Seed = _options.Seed,
            Precision = _options.Precision.Name(),
            DataPosition = dataPosition,
            SkippedSteps = _skipped.TotalSkipped,
            EmaUpdates = _ema?.Updates ?? 0,
            Metric = metric,
            Versions = versions ?? new Dictionary<string, string>(),
        };
        var snapshot = new CheckpointSnapshot(state, configText);
        try
        {
            // Every file names its model, so encode/decode/eval need no --model for our own checkpoints.
            var meta = new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["litevae.step"] = Step.ToString(System.Globalization.CultureInfo.InvariantCulture),
                [Configs.ModelConfigJson.MetadataKey] = Configs.ModelConfigJson.Write(_autoencoder.Config),
            };
            var owned = new List<Tensor>();
            snapshot.AddFile(new SnapshotFile("model.safetensors", SnapshotTensors.ModuleState(_autoencoder, _g.Slots, _g.Params, "", owned), meta), owned);
            if (_ema is not null)
            {
                owned = [];
                snapshot.AddFile(new SnapshotFile("ema.safetensors", SnapshotTensors.ModuleState(_autoencoder, _g.Slots, _ema.Shadow, "", owned), meta), owned);
            }
            if (_discriminator is not null)
            {
                owned = [];
                snapshot.AddFile(new SnapshotFile("discriminator.safetensors",
                    SnapshotTensors.ModuleState(_discriminator.Module, _d!.Slots, _d.Params, DiscriminatorPrefix, owned), meta), owned);
            }
            owned = [];
            var opt = OptimizerTensors("generator.", _g, _gAdam, _gScale, owned);
            if (_d is not null) opt.AddRange(OptimizerTensors("discriminator.", _d, _dAdam!, _dScale, owned));
            snapshot.AddFile(new SnapshotFile("optimizer.safetensors", opt), owned);
            return snapshot;
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }
    }

    public const string DiscriminatorPrefix = "loss.discriminator.";

    private static List<KeyValuePair<string, Tensor>> OptimizerTensors(string prefix, MasterWeights w, FusedAdam adam, DynamicLossScale? scale, List<Tensor> owned)
    {
        var list = SnapshotTensors.PerSlot(adam.ExpAvg, w.Slots, prefix + "exp_avg.", owned);
        list.AddRange(SnapshotTensors.PerSlot(adam.ExpAvgSq, w.Slots, prefix + "exp_avg_sq.", owned));
        list.Add(new(prefix + "step", SnapshotTensors.HostCopy(adam.StepCount)));
        if (scale is not null)
            foreach (var (k, v) in scale.State())
                list.Add(new(prefix + k, SnapshotTensors.HostCopy(v)));
        return list;
    }

    /// <summary>Restores a full training state (weights, EMA, optimizers, step) from a checkpoint.</summary>
    public void Restore(CheckpointDir checkpoint)
    {
        VerifyCheckpoint(checkpoint);
        string modelFile = System.IO.Path.Combine(checkpoint.Path, "model.safetensors");
        LoadWeights(_autoencoder, _g, checkpoint.Load("model.safetensors"), "", modelFile);
        if (_discriminator is not null)
        {
            string file = System.IO.Path.Combine(checkpoint.Path, "discriminator.safetensors");
            if (!checkpoint.Has("discriminator.safetensors"))
                throw new InvalidDataException($"{checkpoint.Path}: has no discriminator.safetensors, but this config trains a discriminator; resume with the config the run was started with.");
            LoadWeights(_discriminator.Module, _d!, checkpoint.Load("discriminator.safetensors"), DiscriminatorPrefix, file);
        }
        if (_ema is not null)
        {
            if (checkpoint.Has("ema.safetensors"))
            {
                SnapshotTensors.LoadPerSlot(_ema.Shadow, _g.Slots, checkpoint.Load("ema.safetensors"), "", System.IO.Path.Combine(checkpoint.Path, "ema.safetensors"));
                _ema.Updates = checkpoint.State.EmaUpdates;
            }
            else
                using (no_grad()) _ema.Shadow.copy_(_g.Params);
        }
        string optFile = System.IO.Path.Combine(checkpoint.Path, "optimizer.safetensors");
        var opt = checkpoint.Load("optimizer.safetensors");
        LoadOptimizer(opt, "generator.", _g, _gAdam, _gScale, optFile);
        if (_d is not null)
            LoadOptimizer(opt, "discriminator.", _d, _dAdam!, _dScale, optFile);
        foreach (var t in opt.Values) t.Dispose();
        Step = checkpoint.State.Step;
        _windowStart = Step;
        _skipped.TotalSkipped = checkpoint.State.SkippedSteps;
    }

    /// <summary>
    /// Compares every file's safetensors header with what this trainer's config will load from it (keys,
    /// shapes, dtypes, sizes) through <see cref="CheckpointGuard"/>, before a single tensor is allocated: a
    /// checkpoint of another model config, a tampered header or a pickle is one clear error, not an
    /// allocation sized by the file.
    /// </summary>
    private void VerifyCheckpoint(CheckpointDir checkpoint)
    {
        string File(string name) => System.IO.Path.Combine(checkpoint.Path, name);
        var model = CheckpointGuard.SpecOf(_autoencoder);
        CheckpointGuard.Verify(File("model.safetensors"), model);
        if (_ema is not null && checkpoint.Has("ema.safetensors"))
            CheckpointGuard.Verify(File("ema.safetensors"), model);
        if (_discriminator is not null && checkpoint.Has("discriminator.safetensors"))
            CheckpointGuard.Verify(File("discriminator.safetensors"), CheckpointGuard.SpecOf(_discriminator.Module, DiscriminatorPrefix));
        var optimizer = OptimizerSpecs("generator.", _g, _gAdam).ToList();
        if (_d is not null) optimizer.AddRange(OptimizerSpecs("discriminator.", _d, _dAdam!));
        // Loss-scale state (fp16) is optional on load; it is a handful of scalars, bounded by the size check.
        CheckpointGuard.Verify(File("optimizer.safetensors"), optimizer, owns: k => !k.Contains("loss_scale", StringComparison.Ordinal));
    }

    private static IEnumerable<TensorSpec> OptimizerSpecs(string prefix, MasterWeights w, FusedAdam adam)
    {
        foreach (var slot in w.Slots) yield return new TensorSpec(prefix + "exp_avg." + slot.Name, ScalarType.Float32, slot.Shape);
        foreach (var slot in w.Slots) yield return new TensorSpec(prefix + "exp_avg_sq." + slot.Name, ScalarType.Float32, slot.Shape);
        yield return new TensorSpec(prefix + "step", adam.StepCount.dtype, adam.StepCount.shape);
    }

    /// <summary>
    /// Loads autoencoder weights only (the reference's --actual_resume): optimizer, EMA history and
    /// step start fresh. Accepts a checkpoint directory or a .safetensors file with encoder.* /
    /// decoder.* keys. The autoencoder must match exactly; other keys (a discriminator, loss.*) are
    /// ignored and counted in the report.
    /// </summary>
    public LoadReport InitFrom(string path)
    {
        string file = File.Exists(path) ? path : System.IO.Path.Combine(CheckpointDir.Open(path).Path, "model.safetensors");
        var modelKeys = _autoencoder.state_dict().Keys.ToHashSet();
        bool Owned(string k) => modelKeys.Contains(k) || k.StartsWith("encoder.", StringComparison.Ordinal) || k.StartsWith("decoder.", StringComparison.Ordinal);
        // Header against the model before any allocation; pickles refused (CheckpointGuard).
        var header = CheckpointGuard.Verify(file, CheckpointGuard.SpecOf(_autoencoder), Owned);
        var tensors = Safetensors.Load(file, Owned);
        try
        {
            var report = LoadWeights(_autoencoder, _g, tensors, "", file);
            if (_ema is not null)
                using (no_grad()) _ema.Shadow.copy_(_g.Params);
            var ignored = header.Entries.Select(e => e.Name).Where(k => !Owned(k)).ToList();
            return report with { Unexpected = ignored };
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private static LoadReport LoadWeights(nn.Module module, MasterWeights w, IReadOnlyDictionary<string, Tensor> tensors, string prefix, string source)
    {
        // Strict: buffers and the compute copy first (rounded in bf16), then the exact fp32 master.
        var report = StateDict.Load(module, tensors, source, strict: true, prefix: prefix);
        SnapshotTensors.LoadPerSlot(w.Params, w.Slots, tensors, prefix, source);
        w.PublishWeights();
        return report;
    }

    private static void LoadOptimizer(IReadOnlyDictionary<string, Tensor> opt, string prefix, MasterWeights w, FusedAdam adam, DynamicLossScale? scale, string source)
    {
        SnapshotTensors.LoadPerSlot(adam.ExpAvg, w.Slots, opt, prefix + "exp_avg.", source);
        SnapshotTensors.LoadPerSlot(adam.ExpAvgSq, w.Slots, opt, prefix + "exp_avg_sq.", source);
        if (!opt.TryGetValue(prefix + "step", out var step))
            throw new InvalidDataException($"{source}: no '{prefix}step'.");
        using (no_grad()) adam.StepCount.copy_(step);
        if (scale is not null)
            foreach (var (k, v) in scale.State())
                if (opt.TryGetValue(prefix + k, out var saved))
                    using (no_grad()) v.copy_(saved);
    }

    public void Dispose()
    {
        _window.Dispose();
        _skipped.Dispose();
        _staging.Dispose();
        _random.Dispose();
        _gScale?.Dispose();
        _dScale?.Dispose();
        _ema?.Dispose();
        _gAdam.Dispose();
        _dAdam?.Dispose();
        _g.Dispose();
        _d?.Dispose();
        _loss.Dispose();
    }
}
