using LiteVae.Data.Decoding;
using LiteVae.Data.Randomness;

namespace LiteVae.Data.Transforms;

/// <summary>
/// The training transform: decode, stochastic rescale, random R × R crop, optional flip (see
/// <see cref="RescaleOptions"/>). All randomness comes from (seed, epoch, sample index), and the draw
/// depends only on the image's size, never on how it was decoded, so a sample looks the same on every
/// run, worker count and machine.
/// </summary>
public sealed class TrainTransform(int resolution, RescaleOptions rescale, DecodeOptions decode) : ISampleTransform
{
    /// <summary>Purpose word that keeps augmentation draws apart from other uses of the same key.</summary>
    private const long AugmentStream = 0x4155474D; // "AUGM"

    public int Resolution { get; } = resolution > 0 ? resolution : throw new ArgumentOutOfRangeException(nameof(resolution));
    public RescaleOptions Rescale { get; } = rescale;
    public DecodeOptions Decode { get; } = decode;

    public void Apply(ReadOnlyMemory<byte> encoded, SampleKey key, Span<byte> dst, TransformScratch scratch)
    {
        using var image = EncodedImage.Open(encoded, Decode);
        var plan = Plan(image.OrientedWidth, image.OrientedHeight, key);
        CropRunner.Run(image, plan, Decode.JpegScaledDecode, Decode.JpegScaleMargin, dst, scratch);
    }

    /// <summary>The crop for an upright image of <paramref name="width"/> × <paramref name="height"/>.</summary>
    public CropPlan Plan(int width, int height, SampleKey key)
    {
        var rng = DeterministicRandom.Create(key.Seed, key.Epoch, key.Index, AugmentStream);
        int r = Resolution;
        int shortSide = Math.Min(width, height);
        double maxShort = Math.Max(r, Math.Min(shortSide, Rescale.MaxRatio * r));
        double u = rng.NextDouble();
        double target = Rescale.Distribution switch
        {
            RescaleDistribution.Fixed => r,
            RescaleDistribution.Uniform => r + u * (maxShort - r),
            _ => r * Math.Exp(u * Math.Log(maxShort / r)),
        };
        int s = Math.Clamp((int)Math.Round(target), r, (int)Math.Floor(maxShort));
        int rw, rh;
        if (width <= height)
        {
            rw = s;
            rh = Math.Max(r, (int)Math.Round((double)height * s / width));
        }
        else
        {
            rh = s;
            rw = Math.Max(r, (int)Math.Round((double)width * s / height));
        }
        int x = rng.NextInt(rw - r + 1);
        int y = rng.NextInt(rh - r + 1);
        bool flip = Rescale.Flip && (rng.NextUInt64() >> 63) == 1;
        return new CropPlan(rw, rh, x, y, r, flip);
    }
}
