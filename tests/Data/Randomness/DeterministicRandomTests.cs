using LiteVae.Data.Randomness;
using LiteVae.Data.Tests.Support;

namespace LiteVae.Data.Tests.Randomness;

public sealed class DeterministicRandomTests
{
    [Fact]
    public void Matches_an_independent_implementation_of_splitmix64_and_xoshiro256starstar()
    {
        var lines = File.ReadAllLines(Path.Combine(Fixtures.RepoRoot, "tests", "fixtures", "rng", "vectors.txt"));
        var sm = lines[0].Split(' ');
        var g = new SplitMix64(ulong.Parse(sm[1]));
        for (int i = 2; i < sm.Length; i++) Assert.Equal(ulong.Parse(sm[i]), g.Next());
        foreach (var line in lines.Skip(1))
        {
            var parts = line.Split(" : ");
            var key = parts[0].Split(' ').Skip(1).Select(long.Parse).ToArray();
            var rng = DeterministicRandom.Create(key[0], key[1], key[2], key[3]);
            foreach (var expected in parts[1].Split(' ').Select(ulong.Parse))
                Assert.Equal(expected, rng.NextUInt64());
        }
    }

    [Fact]
    public void Bounded_integers_are_uniform_and_shuffles_are_permutations()
    {
        var rng = DeterministicRandom.Create(7);
        var counts = new int[6];
        for (int i = 0; i < 60_000; i++) counts[rng.NextInt(6)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_600, 10_400)); // ±4 sigma
        var items = Enumerable.Range(0, 100).ToArray();
        rng.Shuffle(items.AsSpan());
        Assert.Equal(Enumerable.Range(0, 100), items.Order());
        Assert.NotEqual(Enumerable.Range(0, 100), items);
        double sum = 0;
        for (int i = 0; i < 100_000; i++) sum += rng.NextDouble();
        Assert.InRange(sum / 100_000, 0.495, 0.505);
    }
}
