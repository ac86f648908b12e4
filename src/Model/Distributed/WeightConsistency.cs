using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>The outcome of a cross-rank weight comparison.</summary>
/// <param name="Checksums">Per rank: (sum of the raw bit patterns, position-weighted sum), as int64.</param>
public sealed record WeightCheck(bool Identical, IReadOnlyList<int> DivergedRanks, IReadOnlyList<(long Sum, long Weighted)> Checksums)
{
    public string Describe() => Identical
        ? $"weights identical on all {Checksums.Count} ranks"
        : $"weights differ from rank 0's on rank(s) {string.Join(", ", DivergedRanks)}: checksums {string.Join("; ", Checksums.Select((c, r) => $"rank {r}: {c.Sum:x16}/{c.Weighted:x16}"))}";
}

/// <summary>
/// Checks that every rank holds bit-identical weights (data parallelism keeps them so: same start, same
/// averaged gradient, same deterministic update). Each rank maps every value to an exact integer code
/// (frexp: the significand scaled to an integer, and the exponent; TorchSharp has no bit-cast view), and
/// reduces the codes to two int64 checksums on the device: a plain and a position-weighted sum. Integer
/// sums are exact and order-independent (wrapping), so GPU reductions are deterministic. Each rank writes
/// its pair into its row of a [ranks, 2] table and one all-reduce (sum) gives every rank the whole table.
/// </summary>
public static class WeightConsistency
{
    private const long ChunkElements = 1 << 24;

    /// <summary>The two checksums of one flat buffer, on its device (no host sync).</summary>
    public static Tensor Checksum(Tensor flat)
    {
        using var scope = NewDisposeScope();
        var all = flat.reshape(-1);
        long n = all.numel();
        var total = zeros(2, ScalarType.Int64, flat.device);
        for (long start = 0; start < n; start += ChunkElements)
        {
            long len = Math.Min(ChunkElements, n - start);
            var code = Codes(all.narrow(0, start, len));
            // Position weights 1..65521 (a prime), so swapped elements change the weighted sum.
            var weights = arange(start, start + len, 1, ScalarType.Int64, flat.device).remainder_(65521).add_(1);
            total[0].add_(code.sum());
            total[1].add_(code.mul_(weights).sum());
        }
        return scope.MoveToOuter(total);
    }

    /// <summary>An exact int64 code per value: distinct finite floats get distinct codes (fp64: wrapping).</summary>
    private static Tensor Codes(Tensor x)
    {
        switch (x.dtype)
        {
            case ScalarType.Int64:
                return x.clone();
            case ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool:
                return x.to_type(ScalarType.Int64);
            case ScalarType.Float64:
            {
                var (m, e) = x.frexp();
                return m.mul_(9007199254740992.0).to_type(ScalarType.Int64).mul_(4096).add_(e.to_type(ScalarType.Int64).add_(2048));
            }
            default:
            {
                // fp32, bf16, fp16 all convert to fp32 exactly; a 24-bit significand times 2^24 is an integer.
                var (m, e) = x.to_type(ScalarType.Float32).frexp();
                return m.mul_(16777216.0).to_type(ScalarType.Int64).mul_(512).add_(e.to_type(ScalarType.Int64).add_(256));
            }
        }
    }

    /// <summary>Compares the buffers across the ranks (one small all-reduce and one host sync).</summary>
    public static WeightCheck Check(ICollective collective, params Tensor[] flatBuffers)
    {
        if (flatBuffers.Length == 0)
            throw new ArgumentException("no buffers to compare.");
        using var scope = NewDisposeScope();
        var device = flatBuffers[0].device;
        var mine = zeros(2, ScalarType.Int64, device);
        foreach (var b in flatBuffers)
        {
            // Combine buffers with distinct multipliers so equal sums in different buffers don't cancel.
            mine.mul_(1_000_003).add_(Checksum(b));
        }
        var table = zeros(new long[] { collective.WorldSize, 2 }, ScalarType.Int64, device);
        table[collective.Rank].copy_(mine);
        collective.AllReduce(table, ReduceOp.Sum);
        var host = table.cpu().data<long>().ToArray();
        collective.ThrowIfBroken();
        var sums = Enumerable.Range(0, collective.WorldSize).Select(r => (host[2 * r], host[2 * r + 1])).ToList();
        var diverged = Enumerable.Range(1, collective.WorldSize - 1).Where(r => sums[r] != sums[0]).ToList();
        return new WeightCheck(diverged.Count == 0, diverged, sums);
    }

    /// <summary>Makes every rank's buffers equal to rank 0's (group start; resume).</summary>
    public static void BroadcastFromRank0(ICollective collective, IEnumerable<Tensor> buffers)
    {
        foreach (var b in buffers)
            collective.Broadcast(b, 0);
    }
}

/// <summary>The ranks' weights are no longer identical (a bug or corrupted state): the group must stop.</summary>
public sealed class WeightDivergenceException(string message) : Exception(message);
