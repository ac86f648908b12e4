using LiteVae.Model.Checkpoints;
using LiteVae.Model.Tests.Training;
using LiteVae.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Checkpoints;

public sealed class CheckpointStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "litevae-ckpt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static CheckpointSnapshot Snapshot(ToyNet net, MasterWeights master, FusedAdam adam, long step, double? psnr = null)
    {
        var state = new TrainerState
        {
            Step = step, Seed = 5, Precision = master.Precision.Name(), DataPosition = $"pos-{step}",
            Metric = psnr is null ? null : new CheckpointMetric("psnr", psnr.Value, HigherIsBetter: true),
        };
        var snap = new CheckpointSnapshot(state, $"trainer {{ max-steps = {step} }}\n");
        var owned = new List<Tensor>();
        snap.AddFile(new SnapshotFile("model.safetensors", SnapshotTensors.ModuleState(net, master.Slots, master.Params, "encoder.", owned)), owned);
        var ownedOpt = new List<Tensor>();
        var opt = SnapshotTensors.PerSlot(adam.ExpAvg, master.Slots, "generator.exp_avg.", ownedOpt)
            .Concat(SnapshotTensors.PerSlot(adam.ExpAvgSq, master.Slots, "generator.exp_avg_sq.", ownedOpt))
            .Append(new("generator.step", SnapshotTensors.HostCopy(adam.StepCount))).ToList();
        snap.AddFile(new SnapshotFile("optimizer.safetensors", opt), ownedOpt);
        return snap;
    }

    /// <summary>A toy model with fp32 master weights and Adam: what the store tests checkpoint.</summary>
    private sealed class Toy : IDisposable
    {
        private readonly ToyNet _net = new(seed: 2);
        private readonly MasterWeights _master;
        private readonly FusedAdam _adam;

        public Toy()
        {
            _master = MasterWeights.Create(_net, Precision.Fp32);
            _adam = new FusedAdam(_master.Params, _master.Grads, new AdamOptions());
        }

        public CheckpointSnapshot Snapshot(long step, double? psnr = null) => CheckpointStoreTests.Snapshot(_net, _master, _adam, step, psnr);

        public void Dispose()
        {
            _adam.Dispose();
            _master.Dispose();
            _net.Dispose();
        }
    }

    private static void TrainSteps(ToyNet net, MasterWeights master, FusedAdam adam, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            using var scope = NewDisposeScope();
            using var g = new Generator((ulong)i);
            master.ZeroGrad();
            net.call(randn([2, 3, 8, 8], generator: g)).square().mean().backward();
            adam.Step();
        }
    }

    [Fact]
    public void WrittenCheckpointReloadsWeightsAndOptimizerState()
    {
        using var net = new ToyNet(seed: 2);
        using var master = MasterWeights.Create(net, Precision.Fp32, channelsLast: true);
        using var adam = new FusedAdam(master.Params, master.Grads, new AdamOptions(1e-2));
        TrainSteps(net, master, adam, 0, 3);
        string ckpts = Path.Combine(_dir, "checkpoints");
        using (var snap = Snapshot(net, master, adam, 3))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());

        // Through the run directory (→ checkpoints/last → step-00000003).
        var ck = CheckpointDir.Open(_dir);
        Assert.Equal(3, ck.State.Step);
        Assert.Equal("pos-3", ck.State.DataPosition);
        Assert.Equal(Path.Combine(ckpts, "step-00000003"), ck.Path);
        Assert.Contains("max-steps = 3", ck.ConfigText);
        Assert.True(File.Exists(Path.Combine(ckpts, "last", "model.safetensors")));

        // Weights under reference-style names load strictly into a fresh module.
        using var fresh = new ToyNet(seed: 99);
        var weights = ck.Load("model.safetensors");
        var report = StateDict.Load(fresh, weights, ck.Path, strict: true, prefix: "encoder.");
        Assert.True(report.IsExact);
        foreach (var (name, p) in net.named_parameters())
            Assert.True(p.allclose(fresh.named_parameters().Single(q => q.name == name).parameter, 0, 0), name);

        // Optimizer state per parameter, restored into a flat buffer: continuing gives identical numbers.
        // (The same channels-last layout: a different weight layout picks other conv kernels, whose
        // rounding differs in the last bits, which would defeat a bitwise comparison.)
        using var master2 = MasterWeights.Create(fresh, Precision.Fp32, channelsLast: true);
        using var adam2 = new FusedAdam(master2.Params, master2.Grads, new AdamOptions(1e-2));
        var opt = ck.Load("optimizer.safetensors");
        SnapshotTensors.LoadPerSlot(adam2.ExpAvg, master2.Slots, opt, "generator.exp_avg.", "optimizer.safetensors");
        SnapshotTensors.LoadPerSlot(adam2.ExpAvgSq, master2.Slots, opt, "generator.exp_avg_sq.", "optimizer.safetensors");
        adam2.StepCount.copy_(opt["generator.step"]);
        TrainSteps(net, master, adam, 3, 6);
        TrainSteps(fresh, master2, adam2, 3, 6);
        foreach (var (name, p) in net.named_parameters())
            Assert.True(p.allclose(fresh.named_parameters().Single(q => q.name == name).parameter, 0, 0), $"{name} diverged after resume");
    }

    [Fact]
    public void RetentionKeepsTheNewestAndTheBest()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        double[] psnr = [20, 25, 22, 21, 23];
        for (int s = 1; s <= 5; s++)
            using (var snap = toy.Snapshot(s * 10, psnr[s - 1]))
                CheckpointStore.Write(ckpts, snap, new RetentionPolicy(KeepLast: 2, KeepBest: true));

        var steps = CheckpointStore.List(ckpts).Select(c => c.Step).ToArray();
        Assert.Equal(new long[] { 20, 40, 50 }, steps); // newest two + best (25 dB at step 20)
        Assert.Equal(20, CheckpointDir.Open(Path.Combine(ckpts, "best")).State.Step);
        Assert.Equal(50, CheckpointDir.Open(Path.Combine(ckpts, "last")).State.Step);
        Assert.Empty(Directory.EnumerateFileSystemEntries(ckpts, ".tmp-*"));
    }

    [Fact]
    public void APinnedCheckpointOutlivesRetentionUntilItIsUnpinned()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        var keepOne = new RetentionPolicy(KeepLast: 1, KeepBest: false);
        void Save(long step)
        {
            using var snap = toy.Snapshot(step);
            CheckpointStore.Write(ckpts, snap, keepOne);
        }

        Save(1);
        string pin = CheckpointStore.Pin(ckpts, Path.Combine(ckpts, "step-00000001"), "eval-0001-ab");
        Save(2);
        Save(3);
        Assert.Equal(new long[] { 1, 3 }, CheckpointStore.List(ckpts).Select(c => c.Step));
        Assert.Equal(1, CheckpointDir.Open(Path.Combine(ckpts, "step-00000001")).State.Step);

        CheckpointStore.Unpin(pin);
        Save(4);
        Assert.Equal(new long[] { 4 }, CheckpointStore.List(ckpts).Select(c => c.Step));

        // A checkpoint that retention already removed cannot be pinned; the error names it.
        var e = Assert.Throws<DirectoryNotFoundException>(() => CheckpointStore.Pin(ckpts, Path.Combine(ckpts, "step-00000003"), "eval-0002-ab"));
        Assert.Contains("step-00000003", e.Message);
        Assert.Throws<ArgumentException>(() => CheckpointStore.Pin(ckpts, Path.Combine(ckpts, "step-00000004"), "../x"));

        // Pins of a vanished coordinator are cleared wholesale.
        CheckpointStore.Pin(ckpts, Path.Combine(ckpts, "step-00000004"), "eval-0003-ab");
        Assert.Equal(["step-00000004"], CheckpointStore.Pinned(ckpts));
        CheckpointStore.ClearPins(ckpts);
        Assert.Empty(CheckpointStore.Pinned(ckpts));
    }

    [Fact]
    public async Task PinningWaitsWhileAnotherProcessHoldsTheCheckpointLock()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        using (var snap = toy.Snapshot(1))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());

        // flock is per open file: a second open of the lock file conflicts like another process would.
        var held = new FileStream(Path.Combine(ckpts, ".lock"), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var pinning = Task.Run(() => CheckpointStore.Pin(ckpts, Path.Combine(ckpts, "step-00000001"), "eval-0001-ab"));
        await Task.Delay(300);
        Assert.False(pinning.IsCompleted, "Pin did not wait for the lock");
        held.Dispose();
        Assert.True(File.Exists(await pinning.WaitAsync(TimeSpan.FromSeconds(30))));
    }

    [Fact]
    public void DamagedOrIncompleteCheckpointsAreRejectedWithTheFileNamed()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        string dir;
        using (var snap = toy.Snapshot(7))
            dir = CheckpointStore.Write(ckpts, snap, new RetentionPolicy());

        string model = Path.Combine(dir, "model.safetensors");
        using (var f = new FileStream(model, FileMode.Open)) f.SetLength(f.Length - 10);
        var e = Assert.Throws<InvalidDataException>(() => CheckpointDir.Open(dir));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("damaged", e.Message);

        using (var snap = toy.Snapshot(8))
            dir = CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        File.Delete(Path.Combine(dir, "optimizer.safetensors"));
        e = Assert.Throws<InvalidDataException>(() => CheckpointDir.Open(dir));
        Assert.Contains("optimizer.safetensors", e.Message);

        Assert.Throws<InvalidDataException>(() => CheckpointDir.Open(_dir + "/checkpoints/.."));
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        e = Assert.Throws<InvalidDataException>(() => CheckpointDir.Open(Path.Combine(_dir, "empty")));
        Assert.Contains("not a checkpoint", e.Message);
    }

    [Fact]
    public void A_run_directory_copied_without_its_links_keeps_checkpointing()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        using (var snap = toy.Snapshot(1))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        // What `cp -r` makes of the link: a real directory holding a copy of step 1.
        string last = Path.Combine(ckpts, "last");
        File.Delete(last);
        CopyDirectory(Path.Combine(ckpts, "step-00000001"), last);
        using (var snap = toy.Snapshot(2))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        Assert.Equal("step-00000002", new FileInfo(last).LinkTarget);
        Assert.Equal(new long[] { 1, 2 }, CheckpointStore.List(ckpts).Select(c => c.Step));

        // A directory there that is not a checkpoint is someone's: the write fails naming it, and keeps it.
        File.Delete(last);
        Directory.CreateDirectory(last);
        File.WriteAllText(Path.Combine(last, "notes.txt"), "mine");
        using (var snap = toy.Snapshot(3))
        {
            var e = Assert.Throws<IOException>(() => CheckpointStore.Write(ckpts, snap, new RetentionPolicy()));
            Assert.Contains($"{last}: a directory that is not a checkpoint", e.Message);
        }
        Assert.True(File.Exists(Path.Combine(last, "notes.txt")));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Fact]
    public void AnInterruptedWriteLeavesThePreviousCheckpointAsLast()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        using (var snap = toy.Snapshot(1))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        // Simulate dying after the first file of the next checkpoint.
        using (var snap = toy.Snapshot(2))
            Assert.Throws<InvalidOperationException>(() => CheckpointStore.Write(ckpts, snap, new RetentionPolicy(),
                afterEachFile: _ => throw new InvalidOperationException("killed")));
        Assert.Single(Directory.EnumerateDirectories(ckpts, ".tmp-*"));
        Assert.Equal(1, CheckpointDir.Open(_dir).State.Step);
        Assert.Equal(new long[] { 1 }, CheckpointStore.List(ckpts).Select(c => c.Step));
        // The next successful write cleans the leftover up.
        using (var snap = toy.Snapshot(3))
            CheckpointStore.Write(ckpts, snap, new RetentionPolicy());
        Assert.Empty(Directory.EnumerateFileSystemEntries(ckpts, ".tmp-*"));
        Assert.Equal(3, CheckpointDir.Open(_dir).State.Step);
    }

    [Fact]
    public void AsyncWriterWritesOnAnotherThreadAndReportsFailures()
    {
        using var toy = new Toy();
        string ckpts = Path.Combine(_dir, "checkpoints");
        int callerThread = Environment.CurrentManagedThreadId, writerThread = -1;
        using (var writer = new AsyncCheckpointWriter(ckpts, new RetentionPolicy(), _ => writerThread = Environment.CurrentManagedThreadId))
        {
            writer.Submit(toy.Snapshot(1));
            writer.Submit(toy.Snapshot(2));
            writer.WaitIdle();
            Assert.EndsWith("step-00000002", writer.LastWritten);
        }
        Assert.NotEqual(callerThread, writerThread);
        Assert.Equal(new long[] { 1, 2 }, CheckpointStore.List(ckpts).Select(c => c.Step));

        File.WriteAllText(Path.Combine(_dir, "blocker"), "");
        using var failing = new AsyncCheckpointWriter(Path.Combine(_dir, "blocker", "checkpoints"), new RetentionPolicy());
        failing.Submit(toy.Snapshot(3));
        var e = Assert.Throws<IOException>(() => failing.WaitIdle());
        Assert.Contains("blocker", e.Message);
    }
}
