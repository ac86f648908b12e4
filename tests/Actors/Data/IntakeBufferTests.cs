using LiteVae.Actors.Data;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Tests.Data;

public sealed class IntakeBufferTests
{
    private static Batch B(long start, int span = 4) => new(start, span, new byte[span * 3], null, 1, 1,
        Enumerable.Range(0, span).Select(i => new SampleInfo(start + i, 0, 0, (int)start + i, $"k{start + i}")).ToList(), []);

    [Fact]
    public async Task The_trainer_gets_the_batch_that_starts_where_it_stands_whatever_the_order_they_arrive_in()
    {
        var intake = new IntakeBuffer(capacity: 3);
        intake.Reset(8);
        Assert.True(intake.Add(B(16)));
        Assert.True(intake.Add(B(12)));
        Assert.False(intake.TryTake(out _));
        var waiting = intake.WaitAsync();
        Assert.False(waiting.IsCompleted);
        Assert.True(intake.Add(B(8)));
        Assert.True(await waiting);
        var taken = new List<long>();
        while (intake.TryTake(out var b)) using (b) taken.Add(b.Start);
        Assert.Equal([8L, 12, 16], taken);
        Assert.Equal(20, intake.Next);
    }

    [Fact]
    public void A_batch_already_trained_held_or_too_far_ahead_is_dropped_and_disposed()
    {
        var intake = new IntakeBuffer(capacity: 2);
        intake.Reset(8);
        var behind = B(4);
        var twice = B(8);
        var far = B(16);
        Assert.True(intake.Add(B(8)));
        Assert.False(intake.Add(behind));
        Assert.False(intake.Add(twice));
        Assert.False(intake.Add(far));   // 16 is two batches beyond 8: more than the intake holds
        Assert.True(behind.IsDisposed && twice.IsDisposed && far.IsDisposed);
        Assert.Equal(3, intake.Dropped);
        intake.Reset(0);                  // a restart voids what was held
        Assert.Equal(0, intake.Depth);
    }

    [Fact]
    public async Task Closing_wakes_a_waiting_trainer_and_refuses_later_batches()
    {
        var intake = new IntakeBuffer(2);
        var waiting = intake.WaitAsync();
        intake.Close();
        Assert.False(await waiting);
        Assert.False(intake.Add(B(0)));
    }
}
