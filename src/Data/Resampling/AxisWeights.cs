namespace LiteVae.Data.Resampling;

/// <summary>
/// Fixed-point convolution weights for resampling one axis with an antialiased bicubic kernel
/// (Keys, a = −0.5). When shrinking, the kernel is stretched by the scale factor so every input pixel
/// contributes (antialiasing); when enlarging it is the plain cubic. Weights are normalised to sum to
/// one and stored as integers with <see cref="PrecisionBits"/> fractional bits; accumulators start at
/// one half and are shifted back, which rounds to nearest. This is the classic separable scheme that
/// PIL's Image.resize(BICUBIC) also uses, so results agree with PIL exactly for 8-bit images.
/// Only output positions [First, First + Count) are computed: a crop never pays for pixels it drops.
/// </summary>
public sealed class AxisWeights
{
    public const int PrecisionBits = 22;
    public const int Half = 1 << (PrecisionBits - 1);
    private const double BicubicSupport = 2.0;

    private int[] _start = [];
    private int[] _length = [];
    private int[] _weights = [];
    private double[] _scratch = [];

    public int InSize { get; private set; }
    public int OutSize { get; private set; }
    public int First { get; private set; }
    public int Count { get; private set; }
    /// <summary>Stride of <see cref="Weights"/>: the most taps any output position uses.</summary>
    public int Taps { get; private set; }
    /// <summary>True when input and output sizes are equal: output i is input i, no arithmetic needed.</summary>
    public bool IsIdentity { get; private set; }
    /// <summary>First input index any computed output reads.</summary>
    public int InputBegin { get; private set; }
    /// <summary>One past the last input index any computed output reads.</summary>
    public int InputEnd { get; private set; }

    /// <summary>First input index of output <c>First + i</c> (empty for an identity axis).</summary>
    public ReadOnlySpan<int> Start => IsIdentity ? default : _start.AsSpan(0, Count);
    /// <summary>Number of taps of output <c>First + i</c>.</summary>
    public ReadOnlySpan<int> Length => IsIdentity ? default : _length.AsSpan(0, Count);
    /// <summary>Weights of output <c>First + i</c> at [i × Taps, i × Taps + Length[i]).</summary>
    public ReadOnlySpan<int> Weights => IsIdentity ? default : _weights.AsSpan(0, Count * Taps);

    public void Compute(int inSize, int outSize, int first, int count)
    {
        if (inSize <= 0 || outSize <= 0) throw new ArgumentOutOfRangeException(nameof(inSize), "sizes must be positive");
        if (first < 0 || count <= 0 || first + count > outSize)
            throw new ArgumentOutOfRangeException(nameof(first), $"window [{first}, {first + count}) is outside [0, {outSize})");
        InSize = inSize;
        OutSize = outSize;
        First = first;
        Count = count;
        IsIdentity = inSize == outSize;
        if (IsIdentity)
        {
            Taps = 0;
            InputBegin = first;
            InputEnd = first + count;
            return;
        }

        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = BicubicSupport * filterScale;
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        Taps = taps;
        Grow(ref _start, count);
        Grow(ref _length, count);
        Grow(ref _weights, count * taps);
        if (_scratch.Length < taps) _scratch = new double[taps];

        double inverseFilterScale = 1.0 / filterScale;
        int begin = int.MaxValue, end = 0;
        for (int i = 0; i < count; i++)
        {
            double center = (first + i + 0.5) * scale;
            // (int) truncates toward zero; a negative start is clamped to 0 just after.
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            int n = xmax - xmin;

            double sum = 0;
            for (int k = 0; k < n; k++)
            {
                double w = Bicubic((k + xmin - center + 0.5) * inverseFilterScale);
                _scratch[k] = w;
                sum += w;
            }
            var row = _weights.AsSpan(i * taps, taps);
            row.Clear();
            for (int k = 0; k < n; k++)
            {
                double w = sum != 0 ? _scratch[k] / sum : 0;
                // Round half away from zero into fixed point.
                row[k] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            _start[i] = xmin;
            _length[i] = n;
            begin = Math.Min(begin, xmin);
            end = Math.Max(end, xmax);
        }
        InputBegin = begin;
        InputEnd = end;
    }

    /// <summary>Keys' cubic convolution kernel with a = −0.5 (the "bicubic" of PIL, OpenCV and torchvision).</summary>
    public static double Bicubic(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    private static void Grow(ref int[] array, int length)
    {
        if (array.Length < length) array = new int[Math.Max(length, array.Length * 3 / 2)];
    }
}
