using LiteVae.Actors.Distributed;

namespace LiteVae.Actors.Tests.Distributed;

public class TrainerGroupStateTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static GroupMember M(string id, string node, string device = "cuda:0") => new(id, node, device);

    [Fact]
    public void FormsAtOnceWhenTheWantedTrainersRegisterWithStableRankOrder()
    {
        var g = new TrainerGroupState(new GroupSettings(3, 2, TimeSpan.FromSeconds(5)));
        Assert.True(g.Register(M("c", "node-b"), T0));
        Assert.True(g.Register(M("a", "node-a", "cuda:1"), T0));
        Assert.False(g.Register(M("a", "node-a", "cuda:1"), T0));   // repeated registration
        Assert.Null(g.TryForm(T0));                                 // 2 of 3, not settled
        Assert.True(g.Register(M("b", "node-a", "cuda:0"), T0));
        var formed = g.TryForm(T0)!;
        Assert.Equal(1, formed.Generation);
        Assert.Equal(new[] { "b", "a", "c" }, formed.Ranks.Select(m => m.Id));   // node, then device
        Assert.Equal(2, formed.RankOf("c"));
        Assert.False(g.Register(M("a", "node-a", "cuda:1"), T0));   // already a member
        Assert.Null(g.TryForm(T0));                                 // one group at a time
    }

    [Fact]
    public void FormsASmallerGroupOnlyAfterTheSettleTimeAndNeverBelowTheMinimum()
    {
        var g = new TrainerGroupState(new GroupSettings(4, 2, TimeSpan.FromSeconds(5)));
        g.Register(M("a", "n1"), T0);
        Assert.Null(g.TryForm(T0.AddSeconds(60)));                  // 1 < minimum
        g.Register(M("b", "n2"), T0.AddSeconds(61));
        Assert.Null(g.TryForm(T0.AddSeconds(63)));                  // not settled
        var formed = g.TryForm(T0.AddSeconds(66))!;
        Assert.Equal(2, formed.WorldSize);
    }

    [Fact]
    public void LosingAMemberDissolvesTheGroupNamesTheSurvivorsAndTheNextGenerationFormsFromReRegistrations()
    {
        var g = new TrainerGroupState(new GroupSettings(3, 2, TimeSpan.FromSeconds(2)));
        foreach (var id in new[] { "r0", "r1", "r2" }) g.Register(M(id, "n-" + id), T0);
        var first = g.TryForm(T0)!;
        var survivors = g.Lose("r1", T0.AddSeconds(10));
        Assert.Equal(new[] { "r0", "r2" }, survivors.Select(m => m.Id));
        Assert.Null(g.Active);
        Assert.Empty(g.Lose("r1", T0.AddSeconds(10)));              // already handled

        // The survivors' restarted trainers register with new ids.
        g.Register(M("r0-2", "n-r0"), T0.AddSeconds(11));
        g.Register(M("r2-2", "n-r2"), T0.AddSeconds(11));
        Assert.Null(g.TryForm(T0.AddSeconds(12)));                  // waits the settle time for the third
        var second = g.TryForm(T0.AddSeconds(13.5))!;
        Assert.Equal(first.Generation + 1, second.Generation);
        Assert.Equal(new[] { "r0-2", "r2-2" }, second.Ranks.Select(m => m.Id));
    }

    [Fact]
    public void LosingAWaitingTrainerOnlyRemovesIt()
    {
        var g = new TrainerGroupState(new GroupSettings(2, 2, TimeSpan.Zero));
        g.Register(M("a", "n"), T0);
        Assert.Empty(g.Lose("a", T0));
        g.Register(M("b", "n"), T0);
        Assert.Null(g.TryForm(T0));
    }

    [Fact]
    public void SettingsAreValidated()
    {
        Assert.Empty(GroupSettings.Single.Problems());
        Assert.NotEmpty(new GroupSettings(2, 3, TimeSpan.Zero).Problems());
        Assert.NotEmpty(new GroupSettings(0, 0, TimeSpan.Zero).Problems());
    }
}
