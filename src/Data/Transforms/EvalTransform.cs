using LiteVae.Data.Decoding;

namespace LiteVae.Data.Transforms;

/// <summary>
/// The evaluation transform (spec 10.1): bicubic resize of the short side to R, then the centre R × R
/// crop. Sizes and offsets follow torchvision's Resize(R, BICUBIC) + CenterCrop(R) on a PIL image
/// (long side = floor(R × long / short); offset = round-half-even((size − R) / 2)), and the JPEG is
/// decoded at full size, so the result equals that PyTorch pipeline's pixels exactly.
/// </summary>
public sealed class EvalTransform(int resolution, DecodeOptions decode) : ISampleTransform
{
    public int Resolution { get; } = resolution > 0 ? resolution : throw new ArgumentOutOfRangeException(nameof(resolution));
    public DecodeOptions Decode { get; } = decode;

    public void Apply(ReadOnlyMemory<byte> encoded, SampleKey key, Span<byte> dst, TransformScratch scratch)
    {
        using var image = EncodedImage.Open(encoded, Decode);
        var plan = Plan(image.OrientedWidth, image.OrientedHeight, Resolution);
        CropRunner.Run(image, plan, allowScaledJpeg: false, scaleMargin: 1, dst, scratch);
    }

    public static CropPlan Plan(int width, int height, int resolution)
    {
        int r = resolution;
        int rw, rh;
        if (width <= height)
        {
            rw = r;
            rh = (int)((double)((long)r * height) / width);
        }
        else
        {
            rh = r;
            rw = (int)((double)((long)r * width) / height);
        }
        int x = (int)Math.Round((rw - r) / 2.0, MidpointRounding.ToEven);
        int y = (int)Math.Round((rh - r) / 2.0, MidpointRounding.ToEven);
        return new CropPlan(rw, rh, x, y, r, Flip: false);
    }
}
