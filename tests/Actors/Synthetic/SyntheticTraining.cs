using LiteVae.Model.Metrics;
using System.Collections.Concurrent;
using System.Text.Json;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;
using LiteVae.Data.Order;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Tests.Synthetic;

/// <summary>
/// Test/benchmark stand-in for the trainer: checks that every image it gets is the solid grey its sample's key
/// names (<see cref="TestShards"/>; so a batch that crossed nodes in chunks is proven intact), keeps a checksum of
/// what it trained as its "weights", optionally sleeps per step (a device at a fixed rate) and crashes once.
/// </summary>
public sealed class SyntheticEngine(SyntheticEngine.Options options) : ITrainingEngine
{
    public sealed class Options
    {
        public TimeSpan StepTime { get; init; }
        /// <summary>Check each image against its key's colour (test shards); off for real photos (benchmarks).</summary>
        public bool Verify { get; init; } = true;
        public long CrashAtStep { get; set; } = -1;
        /// <summary>Before this step the engine signals <see cref="AtGate"/> and blocks until <see cref="Release"/>.</summary>
        public long GateAtStep { get; init; } = -1;
        public ManualResetEventSlim AtGate { get; } = new();
        public ManualResetEventSlim Release { get; } = new();
        /// <summary>Every sample trained, in order (a resumed engine goes on appending).</summary>
        public List<SampleRef> Consumed { get; } = [];
        /// <summary>The batch starts trained, in order.</summary>
        public List<long> Starts { get; } = [];
        public List<long> RestoredSteps { get; } = [];
        public int Initialisations;
    }

    private long _checksum;

    public string Device => "synthetic";
    public long Step { get; private set; }

    public RestoredState Initialize(string experimentHocon, string runDir, string? resumeFrom)
    {
        Interlocked.Increment(ref options.Initialisations);
        if (resumeFrom is null) { lock (options.RestoredSteps) options.RestoredSteps.Add(0); return new RestoredState(0, null); }
        var state = JsonSerializer.Deserialize<SyntheticSnapshot.State>(File.ReadAllText(Path.Combine(resumeFrom, "state.json")))!;
        (Step, _checksum) = (state.Step, state.Checksum);
        lock (options.RestoredSteps) options.RestoredSteps.Add(Step);
        return new RestoredState(state.Step, state.DataPosition);
    }

    public IReadOnlyDictionary<string, double>? TrainStep(Batch batch, bool readLosses)
    {
        if (Step + 1 == options.GateAtStep)
        {
            options.AtGate.Set();
            options.Release.Wait(TimeSpan.FromSeconds(60));
        }
        if (Step + 1 == options.CrashAtStep)
        {
            options.CrashAtStep = -1;
            throw new InvalidOperationException("injected trainer crash");
        }
        for (int i = 0; i < batch.Count; i++)
        {
            var s = batch.Samples[i];
            _checksum = unchecked(_checksum * 1_000_003 + s.Epoch * 7919 + s.Shard * 104_729 + s.Index);
            if (!options.Verify) continue;
            var (shard, index) = TestShards.Parse(s.Key);
            int want = TestShards.Value(shard, index);
            foreach (byte b in batch.Sample(i))
                if (Math.Abs(b - want) > 2)
                    throw new InvalidDataException($"image of sample {s.Key} is corrupt: {b}, expected {want}");
        }
        lock (options.Consumed)
        {
            options.Consumed.AddRange(batch.Samples.Select(s => new SampleRef(s.Epoch, s.Shard, s.Index)));
            options.Starts.Add(batch.Start);
        }
        if (options.StepTime > TimeSpan.Zero) Thread.Sleep(options.StepTime);
        Step++;
        return readLosses ? new Dictionary<string, double> { ["l1"] = 1.0 / Step, ["kl"] = 0.01 } : null;
    }

    public ICheckpointSnapshot Snapshot(string dataPosition) => new SyntheticSnapshot(new(Step, _checksum, dataPosition));

    public void Dispose() { }
}

public sealed class SyntheticSnapshot(SyntheticSnapshot.State state) : ICheckpointSnapshot
{
    public sealed record State(long Step, long Checksum, string DataPosition);

    public State Value { get; } = state;
    public long Step => Value.Step;
    public void Dispose() { }
}

/// <summary>Atomic (temp folder + rename) checkpoints of the synthetic engine. Pins are recorded (who holds
/// which checkpoint, and every pin ever made); a checkpoint named in <see cref="RemovedBeforePin"/> behaves as
/// if retention deleted it between the coordinator's lookup and its pin.</summary>
public sealed class SyntheticStore : ICheckpointStore
{
    public ConcurrentDictionary<string, string> Pins { get; } = new();
    public ConcurrentQueue<(string Owner, string Checkpoint)> PinHistory { get; } = new();
    public ConcurrentBag<string> RemovedBeforePin { get; } = [];
    public int MaxPinsHeld { get; private set; }

    public IDisposable? Pin(string runDir, string checkpoint, string owner)
    {
        if (RemovedBeforePin.Contains(Path.GetFileName(checkpoint)))
            throw new CheckpointNotFoundException($"{checkpoint}: no such checkpoint (retention removed it)");
        Pins[owner] = checkpoint;
        PinHistory.Enqueue((owner, checkpoint));
        lock (PinHistory) MaxPinsHeld = Math.Max(MaxPinsHeld, Pins.Count);
        return new Unpin(() => Pins.TryRemove(owner, out _));
    }

    private sealed class Unpin(Action release) : IDisposable
    {
        public void Dispose() => release();
    }

    /// <summary>Writes of this step and later fail, as on a full disk.</summary>
    public long FailFromStep { get; set; } = long.MaxValue;

    public string Write(ICheckpointSnapshot snapshot, string runDir, string reason)
    {
        var s = ((SyntheticSnapshot)snapshot).Value;
        if (s.Step >= FailFromStep) throw new IOException($"No space left on device (step {s.Step})");
        string dir = Path.Combine(runDir, "checkpoints"), final = Path.Combine(dir, $"step-{s.Step:D8}");
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        File.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(s));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(temp, final);
        return final;
    }

    public IReadOnlyList<CheckpointEntry> List(string runDir)
    {
        string dir = Path.Combine(runDir, "checkpoints");
        if (!Directory.Exists(dir)) return [];
        return Directory.GetDirectories(dir, "step-*").Select(d => new CheckpointEntry(long.Parse(Path.GetFileName(d)[5..]), d))
            .OrderBy(c => c.Step).ToList();
    }

    public string Resolve(string runDir, string spec)
    {
        var all = List(runDir);
        var hit = spec == "last" ? all.LastOrDefault()
            : spec.StartsWith("step-") && long.TryParse(spec[5..], out long n) ? all.FirstOrDefault(c => c.Step == n)
            : Directory.Exists(spec) ? new CheckpointEntry(0, spec) : null;
        return hit?.Path ?? throw new CheckpointNotFoundException(
            $"no checkpoint '{spec}' in {runDir} (available: {string.Join(", ", all.Select(c => $"step-{c.Step}").DefaultIfEmpty("none"))})");
    }
}

/// <summary>An evaluation that reads the checkpoint's step in three "batches" and reports it as a metric.</summary>
public sealed class SyntheticEvalJob(EvalProtocol.RunEvaluation request, TimeSpan batchTime = default) : IEvalJob
{
    private int _batches;

    public bool Step()
    {
        if (request.CheckpointPath.Contains("explode")) throw new InvalidOperationException("injected eval crash");
        if (batchTime > TimeSpan.Zero) Thread.Sleep(batchTime);
        return ++_batches < 3;
    }

    public EvalOutcome Finish()
    {
        var s = JsonSerializer.Deserialize<SyntheticSnapshot.State>(File.ReadAllText(Path.Combine(request.CheckpointPath, "state.json")))!;
        return new EvalOutcome([new MetricValue("step", s.Step, null), new MetricValue("lpips", null, "no weight file")], null, 3 * 4);
    }

    public void Dispose() { }
}
