using LiteVae.Model;
using LiteVae.Model.Configs;
using LiteVae.Model.Distributed;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributed;

/// <summary>
/// Two ranks of a group in one process (TCP for both communicators): when a step fails on one of them,
/// that rank aborts both communicators, so closing it never waits on a collective a lost peer will not join
/// (on GPUs an NCCL all-reduce queued for a dead rank kept a survivor out of the next generation for the
/// whole operation timeout).
/// </summary>
public sealed class DataParallelRankTests
{
    private static readonly CollectiveSettings Settings = CollectiveSettings.Default with
    {
        Backend = "tcp", JoinTimeout = TimeSpan.FromSeconds(30), OperationTimeout = TimeSpan.FromSeconds(30),
    };

    private static LiteVaeTrainer Tiny()
    {
        manual_seed(3);
        var config = new AutoencoderConfig(4, false, new EncoderConfig(3, 3, 8, [1, 2], 1, 8, [1, 2], 1), new DecoderConfig(8, 4, 3, [1, 1, 2, 2], 0, 0.0));
        return new LiteVaeTrainer(new LiteAutoencoder(config), null, null, new LossConfig(), new TrainerOptions { Seed = 1 }, CPU);
    }

    [Fact]
    public async Task A_rank_whose_step_fails_aborts_both_communicators()
    {
        using var t0 = Tiny();
        using var t1 = Tiny();
        var leader = new DataParallelRank(Settings);
        using var follower = new DataParallelRank(Settings);
        var addresses = leader.CreateAddresses("cpu");
        await Task.WhenAll(Task.Run(() => leader.Join(t0, CPU, 1, 0, 2, addresses)), Task.Run(() => follower.Join(t1, CPU, 1, 1, 2, addresses)));

        // One step in lockstep: the leader sends the global batch, both train on their halves.
        long[] shape = [4, 3, 32, 32];
        var pixels = new byte[4 * 3 * 32 * 32];
        new Random(1).NextBytes(pixels);
        var follow = Task.Run(() => follower.FollowStep(t1));
        leader.LeadStep(t0, pixels, shape);
        Assert.False((await follow).Ended);
        Assert.Equal(1, t1.Step);
        Assert.False(follower.DataBroken);

        // The leader's process goes away: the follower's next step fails on the control link, and the
        // gradient communicator (which saw no error of its own) is aborted with it.
        leader.Dispose();
        Assert.ThrowsAny<CollectiveException>(() => follower.FollowStep(t1));
        Assert.True(follower.DataBroken);
    }
}
