namespace LiteVae.Model.Configs;

/// <summary>
/// The reference LiteVAE encoder (spec 3.2): per-level feature-extractor UNets on a multi-level Haar
/// DWT, pooled to the coarsest level and merged by an aggregator UNet. Field names follow the
/// reference's constructor arguments. The number of output channels (the reference's latent_dim) is
/// not part of this record: the autoencoder derives it from embed_dim and use_quant (spec 6).
/// </summary>
public sealed record EncoderConfig
{
    /// <summary>GroupNorm groups in every encoder ResidualBlock (reference: 8, eps 1e-5).</summary>
    public const int NormGroups = 8;

    public int InChannels { get; }
    public int DctLevels { get; }
    public int ExtractorChannels { get; }
    public IReadOnlyList<int> ExtractorMult { get; }
    public int ExtractorResblocks { get; }
    public int AggregateChannels { get; }
    public IReadOnlyList<int> AggregateMult { get; }
    public int AggregateResblocks { get; }

    public EncoderConfig(int inChannels, int dctLevels, int extractorChannels, IReadOnlyList<int> extractorMult,
        int extractorResblocks, int aggregateChannels, IReadOnlyList<int> aggregateMult, int aggregateResblocks)
    {
        Require(inChannels >= 1, "in_channels", $"must be at least 1 (got {inChannels})");
        Require(dctLevels is >= 1 and <= 8, "dct_levels", $"must be between 1 and 8 (got {dctLevels})");
        Require(extractorResblocks >= 1, "extractor_resblocks", $"must be at least 1 (got {extractorResblocks})");
        Require(aggregateResblocks >= 1, "aggregate_resblocks", $"must be at least 1 (got {aggregateResblocks})");
        CheckWidths(extractorChannels, extractorMult, "extractor");
        CheckWidths(aggregateChannels, aggregateMult, "aggregate");
        InChannels = inChannels;
        DctLevels = dctLevels;
        ExtractorChannels = extractorChannels;
        ExtractorMult = extractorMult.ToArray();
        ExtractorResblocks = extractorResblocks;
        AggregateChannels = aggregateChannels;
        AggregateMult = aggregateMult.ToArray();
        AggregateResblocks = aggregateResblocks;
    }

    /// <summary>Images must be divisible by this in height and width (2^dct_levels).</summary>
    public int Downsampling => 1 << DctLevels;

    /// <summary>Channels of one DWT level: 4 sub-bands x the image channels.</summary>
    public int LevelChannels => 4 * InChannels;

    // Reference README block counts: S 3/3, B 4/4, M 5/4, L 5/4 (spec 3.3).
    public static EncoderConfig S { get; } = new(3, 3, 16, [1, 2, 2], 3, 16, [1, 2, 2], 3);
    public static EncoderConfig B { get; } = new(3, 3, 32, [1, 2, 3], 4, 32, [1, 2, 3], 4);
    public static EncoderConfig M { get; } = new(3, 3, 64, [1, 2, 4], 5, 32, [1, 2, 3], 4);
    public static EncoderConfig L { get; } = new(3, 3, 64, [1, 2, 4], 5, 64, [1, 2, 4], 4);

    /// <summary>A preset by name (S, B, M or L, any case).</summary>
    public static EncoderConfig Preset(string name) => name.ToUpperInvariant() switch
    {
        "S" => S, "B" => B, "M" => M, "L" => L,
        _ => throw new ArgumentException($"unknown encoder preset '{name}': use S, B, M or L."),
    };

    private static void CheckWidths(int channels, IReadOnlyList<int> mult, string prefix)
    {
        Require(channels >= 1, $"{prefix}_channels", $"must be at least 1 (got {channels})");
        Require(mult is { Count: >= 1 }, $"{prefix}_mult", "must list at least one multiplier");
        foreach (int m in mult)
        {
            Require(m >= 1, $"{prefix}_mult", $"multipliers must be at least 1 (got {m})");
            Require(channels * m % NormGroups == 0, $"{prefix}_mult",
                $"width {prefix}_channels x {m} = {channels * m} must be divisible by the {NormGroups} GroupNorm groups");
        }
    }

    private static void Require(bool ok, string key, string what)
    {
        if (!ok) throw new ModelConfigException("encoder." + key, what);
    }

    public bool Equals(EncoderConfig? other) =>
        other is not null && InChannels == other.InChannels && DctLevels == other.DctLevels
        && ExtractorChannels == other.ExtractorChannels && ExtractorMult.SequenceEqual(other.ExtractorMult)
        && ExtractorResblocks == other.ExtractorResblocks && AggregateChannels == other.AggregateChannels
        && AggregateMult.SequenceEqual(other.AggregateMult) && AggregateResblocks == other.AggregateResblocks;

    public override int GetHashCode() => HashCode.Combine(InChannels, DctLevels, ExtractorChannels, ExtractorResblocks,
        AggregateChannels, AggregateResblocks, ExtractorMult.Count, AggregateMult.Count);
}
