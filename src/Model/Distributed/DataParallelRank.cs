using LiteVae.Model.Training;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>What one follower step did: trained step <paramref name="Step"/>, or the leader ended the group.</summary>
public sealed record FollowerStep(bool Ended, long Step);

/// <summary>The two communicators of a group generation: control (TCP, the batches) and data (gradients).</summary>
public sealed record GroupIds(CollectiveGroupId Control, CollectiveGroupId Data);

/// <summary>
/// One trainer's membership in a data-parallel group: two communicators per generation, the control group
/// (TCP, host bytes: each step's header and global batch, sent by rank 0) and the data group (the gradient
/// all-reduce and weight checks: NCCL on GPUs, TCP on CPUs). The data plane feeds only rank 0; the batch in
/// the experiment config is the GLOBAL batch, which every rank slices (<see cref="DataParallelLayout"/>, near-equal parts
/// when bad samples made it short), so
/// a recipe trains the same on any number of GPUs. Sending the batch over the control group keeps every
/// rank on the same global batch sequence by construction (no second ordering to agree on) and costs
/// one host copy per step (~6 MB at 256², batch 32).
/// </summary>
public sealed class DataParallelRank(CollectiveSettings settings) : IDisposable
{
    private const long StepHeader = 1, EndHeader = 0;
    private const int FollowerWindow = 100;   // followers never report losses; flush the window now and then

    private readonly object _gate = new();
    private TcpCollective? _control;
    private ICollective? _data;
    private string? _aborted;
    private int _microBatches = 1;

    public int Rank => _control?.Rank ?? -1;
    public int WorldSize => _control?.WorldSize ?? 1;
    public bool InGroup => _control is not null;
    /// <summary>The gradient communicator is broken (aborted or failed).</summary>
    public bool DataBroken => _data?.IsBroken ?? false;

    private TcpCollectiveOptions Tcp => new(settings.TcpAddress, settings.JoinTimeout, settings.OperationTimeout);

    /// <summary>Rank 0: the addresses of a new generation (their bootstrap roots run in this process).</summary>
    public GroupIds CreateAddresses(string device) =>
        new(TcpCollective.CreateGroupId(Tcp), CollectiveFactories.Create(settings, device).CreateGroupId());

    public void Join(LiteVaeTrainer trainer, Device device, int microBatches, int rank, int worldSize, GroupIds ids)
    {
        if (InGroup) throw new InvalidOperationException("this trainer already is a rank of a group; a new generation needs a fresh trainer.");
        lock (_gate)
            if (_aborted is { } why) throw new CollectiveException($"the group was aborted before this rank joined: {why}");
        var control = TcpCollective.Join(ids.Control, rank, worldSize, Tcp);
        ICollective data;
        try
        {
            data = ids.Data.Backend == TcpCollective.BackendName
                ? TcpCollective.Join(ids.Data, rank, worldSize, Tcp)
                : CollectiveFactories.Create(settings, device.ToString()).Join(ids.Data, rank, worldSize, device);
        }
        catch
        {
            control.Dispose();
            throw;
        }
        lock (_gate)
        {
            (_control, _data) = (control, data);
            if (_aborted is { } why) { control.Abort(why); data.Abort(why); }
        }
        _microBatches = microBatches;
        trainer.JoinGroup(data, settings.CheckWeightsEvery, (long)(settings.BucketMb * (1 << 20) / sizeof(float)));
    }

    /// <summary>This rank's part of a global batch of <paramref name="globalBatch"/> samples (short when bad samples were skipped).</summary>
    private DataParallelLayout Layout(long globalBatch) => new(Rank, WorldSize, _microBatches, checked((int)globalBatch));

    /// <summary>Rank 0: sends the global batch to the followers and trains on its own slice.</summary>
    public void LeadStep(LiteVaeTrainer trainer, ReadOnlySpan<byte> pixels, long[] shape)
    {
        var control = _control ?? throw new InvalidOperationException("not in a group.");
        try
        {
            var layout = Layout(shape[0]);
            using (var header = tensor(new[] { StepHeader, shape[0], shape[1], shape[2], shape[3] }))
                control.Broadcast(header, 0);
            using (var bytes = tensor(pixels.ToArray()))
                control.Broadcast(bytes, 0);
            trainer.TrainStep(layout.SliceRows(pixels), [layout.PerRankBatch, shape[1], shape[2], shape[3]], layout);
        }
        catch (Exception e)
        {
            AbortAfter(e);
            throw;
        }
    }

    /// <summary>Followers: waits for the leader's next batch (at most the operation timeout) and trains on this rank's slice.</summary>
    public FollowerStep FollowStep(LiteVaeTrainer trainer)
    {
        try
        {
            return Follow(trainer);
        }
        catch (Exception e)
        {
            AbortAfter(e);
            throw;
        }
    }

    private FollowerStep Follow(LiteVaeTrainer trainer)
    {
        var control = _control ?? throw new InvalidOperationException("not in a group.");
        long[] h;
        using (var header = zeros(5, ScalarType.Int64))
        {
            control.Broadcast(header, 0);
            h = header.data<long>().ToArray();
        }
        if (h[0] == EndHeader)
            return new FollowerStep(true, trainer.Step);
        if (h[0] != StepHeader || h.Skip(1).Any(v => v < 1 || v > 1 << 20))
            throw new CollectiveException($"rank {Rank}: malformed step header [{string.Join(", ", h)}] from rank 0.");
        byte[] global;
        using (var bytes = zeros(h[1] * h[2] * h[3] * h[4], ScalarType.Byte))
        {
            control.Broadcast(bytes, 0);
            global = bytes.data<byte>().ToArray();
        }
        var layout = Layout(h[1]);
        trainer.TrainStep(layout.SliceRows<byte>(global), [layout.PerRankBatch, h[2], h[3], h[4]], layout);
        if (trainer.Step % FollowerWindow == 0) trainer.ReadWindow();
        return new FollowerStep(false, trainer.Step);
    }

    /// <summary>Rank 0: the run is over; the followers stop stepping.</summary>
    public void End()
    {
        if (_control is not { } control) return;
        using var header = tensor(new[] { EndHeader, 0L, 0L, 0L, 0L });
        control.Broadcast(header, 0);
    }

    /// <summary>
    /// A step that failed leaves this rank out of lockstep for good, whichever communicator broke: abort both.
    /// Otherwise the other one (NCCL, with an all-reduce queued that a dead peer never joins) would make
    /// Dispose wait for the operation timeout (minutes) before this rank could rejoin a new generation.
    /// </summary>
    private void AbortAfter(Exception e) => Abort($"rank {Rank} failed a step: {e.GetBaseException().Message}");

    /// <summary>Any thread: breaks both communicators (blocked calls return with a CollectiveException).</summary>
    public void Abort(string reason)
    {
        lock (_gate)
        {
            _aborted ??= reason;
            _control?.Abort(reason);
            _data?.Abort(reason);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _data?.Dispose();
            _control?.Dispose();
        }
    }
}
