using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LiteVae.Data.Decoding;

namespace LiteVae.Data.Resampling;

/// <summary>Per-worker buffers for <see cref="Resampler"/> (reused between images; not thread-safe).</summary>
public sealed class ResampleScratch
{
    public AxisWeights X { get; } = new();
    public AxisWeights Y { get; } = new();
    internal byte[] Intermediate = [];

    internal byte[] IntermediateOf(int length)
    {
        if (Intermediate.Length < length)
            Intermediate = GC.AllocateUninitializedArray<byte>(Math.Max(length, Intermediate.Length * 3 / 2), pinned: true);
        return Intermediate;
    }
}

/// <summary>
/// Antialiased bicubic resize of an RGBA image to <c>outW × outH</c>, producing only the window
/// [cropX, cropX + cropW) × [cropY, cropY + cropH) of the result, written as planar RGB (C × H × W,
/// the layout of a training batch), optionally mirrored left–right. Horizontal pass first, rounded to
/// 8 bits, then vertical (PIL's order and rounding, so results match PIL bit for bit). The source
/// may be a decoded window (<see cref="RgbaRegion"/>) as long as it covers <see cref="SourceWindow"/>.
/// </summary>
public static unsafe class Resampler
{
    /// <summary>The source rectangle [X0, X1) × [Y0, Y1) that a crop of the resized image reads.</summary>
    public static (int X0, int Y0, int X1, int Y1) SourceWindow(
        int inW, int inH, int outW, int outH, int cropX, int cropY, int cropW, int cropH, ResampleScratch scratch)
    {
        scratch.X.Compute(inW, outW, cropX, cropW);
        scratch.Y.Compute(inH, outH, cropY, cropH);
        return (scratch.X.InputBegin, scratch.Y.InputBegin, scratch.X.InputEnd, scratch.Y.InputEnd);
    }

    public static void ResizeCropPlanar(
        RgbaRegion src, int outW, int outH, int cropX, int cropY, int cropW, int cropH, bool flip,
        Span<byte> dst, ResampleScratch scratch)
    {
        var (x0, y0, x1, y1) = SourceWindow(src.FullWidth, src.FullHeight, outW, outH, cropX, cropY, cropW, cropH, scratch);
        if (x0 < src.X || y0 < src.Y || x1 > src.X + src.Width || y1 > src.Y + src.Height)
            throw new ArgumentException($"source window [{x0},{x1})x[{y0},{y1}) is not inside the decoded region " +
                                        $"[{src.X},{src.X + src.Width})x[{src.Y},{src.Y + src.Height})");
        int planeSize = cropW * cropH;
        if (dst.Length < 3 * planeSize)
            throw new ArgumentException($"destination holds {dst.Length} bytes, need {3 * planeSize}", nameof(dst));

        var xw = scratch.X;
        var yw = scratch.Y;
        int rows = y1 - y0;
        fixed (byte* srcBase = src.Data)
        fixed (byte* dstBase = dst)
        {
            if (yw.IsIdentity)
            {
                // One pass: the horizontal result rows are the output rows.
                Horizontal(src, srcBase, xw, y0, rows, flip, dstBase, planeSize);
                return;
            }
            byte[] inter = scratch.IntermediateOf(3 * rows * cropW);
            fixed (byte* interBase = inter)
            {
                Horizontal(src, srcBase, xw, y0, rows, flip, interBase, rows * cropW);
                Vertical(yw, interBase, rows, cropW, dstBase, planeSize);
            }
        }
    }

    /// <summary>Resamples rows [rowBegin, rowBegin + rows) along x into three planes of <c>xw.Count</c>-wide rows.</summary>
    private static void Horizontal(RgbaRegion src, byte* srcBase, AxisWeights xw, int rowBegin, int rows, bool flip,
                                   byte* dst, int planeStride)
    {
        int cw = xw.Count;
        byte* r = dst, g = dst + planeStride, b = dst + 2 * planeStride;
        int taps = xw.Taps;
        fixed (int* startBase = xw.Start)
        fixed (int* lengthBase = xw.Length)
        fixed (int* weightBase = xw.Weights)
        {
            for (int row = 0; row < rows; row++)
            {
                // Pointer to full-image column src.X of this row; indexes below subtract src.X.
                byte* line = srcBase + (long)(rowBegin + row - src.Y) * src.Stride;
                int outOffset = row * cw;
                for (int j = 0; j < cw; j++)
                {
                    int o = outOffset + (flip ? cw - 1 - j : j);
                    if (xw.IsIdentity)
                    {
                        byte* px = line + (xw.First + j - src.X) * 4;
                        r[o] = px[0];
                        g[o] = px[1];
                        b[o] = px[2];
                        continue;
                    }
                    byte* p = line + (startBase[j] - src.X) * 4;
                    int n = lengthBase[j];
                    int* w = weightBase + j * taps;
                    if (Sse41.IsSupported)
                    {
                        var acc = Vector128.Create(AxisWeights.Half);
                        for (int t = 0; t < n; t++)
                            acc = Sse2.Add(acc, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(p + t * 4), Vector128.Create(w[t])));
                        acc = Sse2.ShiftRightArithmetic(acc, AxisWeights.PrecisionBits);
                        var s16 = Sse2.PackSignedSaturate(acc, acc);
                        var u8 = Sse2.PackUnsignedSaturate(s16, s16);
                        uint rgba = u8.AsUInt32().ToScalar();
                        r[o] = (byte)rgba;
                        g[o] = (byte)(rgba >> 8);
                        b[o] = (byte)(rgba >> 16);
                    }
                    else
                    {
                        int sr = AxisWeights.Half, sg = AxisWeights.Half, sb = AxisWeights.Half;
                        for (int t = 0; t < n; t++)
                        {
                            int k = w[t];
                            byte* q = p + t * 4;
                            sr += q[0] * k;
                            sg += q[1] * k;
                            sb += q[2] * k;
                        }
                        r[o] = Clip(sr);
                        g[o] = Clip(sg);
                        b[o] = Clip(sb);
                    }
                }
            }
        }
    }

    /// <summary>Resamples each of the three planes along y.</summary>
    private static void Vertical(AxisWeights yw, byte* inter, int rows, int width, byte* dst, int planeSize)
    {
        int taps = yw.Taps, begin = yw.InputBegin;
        fixed (int* startBase = yw.Start)
        fixed (int* lengthBase = yw.Length)
        fixed (int* weightBase = yw.Weights)
        {
            for (int c = 0; c < 3; c++)
            {
                byte* plane = inter + (long)c * rows * width;
                byte* outPlane = dst + (long)c * planeSize;
                for (int i = 0; i < yw.Count; i++)
                {
                    byte* first = plane + (long)(startBase[i] - begin) * width;
                    int n = lengthBase[i];
                    int* w = weightBase + i * taps;
                    byte* outRow = outPlane + (long)i * width;
                    int j = 0;
                    if (Avx2.IsSupported)
                    {
                        var half = Vector256.Create(AxisWeights.Half);
                        for (; j + 32 <= width; j += 32)
                        {
                            Vector256<int> a0 = half, a1 = half, a2 = half, a3 = half;
                            byte* q = first + j;
                            for (int t = 0; t < n; t++, q += width)
                            {
                                var k = Vector256.Create(w[t]);
                                a0 = Avx2.Add(a0, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(q), k));
                                a1 = Avx2.Add(a1, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(q + 8), k));
                                a2 = Avx2.Add(a2, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(q + 16), k));
                                a3 = Avx2.Add(a3, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(q + 24), k));
                            }
                            Store32(outRow + j, a0, a1, a2, a3);
                        }
                    }
                    if (Sse41.IsSupported)
                    {
                        var half = Vector128.Create(AxisWeights.Half);
                        for (; j + 16 <= width; j += 16)
                        {
                            Vector128<int> a0 = half, a1 = half, a2 = half, a3 = half;
                            byte* q = first + j;
                            for (int t = 0; t < n; t++, q += width)
                            {
                                var k = Vector128.Create(w[t]);
                                a0 = Sse2.Add(a0, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(q), k));
                                a1 = Sse2.Add(a1, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(q + 4), k));
                                a2 = Sse2.Add(a2, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(q + 8), k));
                                a3 = Sse2.Add(a3, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(q + 12), k));
                            }
                            var lo = Sse2.PackSignedSaturate(Sse2.ShiftRightArithmetic(a0, AxisWeights.PrecisionBits),
                                                             Sse2.ShiftRightArithmetic(a1, AxisWeights.PrecisionBits));
                            var hi = Sse2.PackSignedSaturate(Sse2.ShiftRightArithmetic(a2, AxisWeights.PrecisionBits),
                                                             Sse2.ShiftRightArithmetic(a3, AxisWeights.PrecisionBits));
                            Sse2.Store(outRow + j, Sse2.PackUnsignedSaturate(lo, hi));
                        }
                    }
                    for (; j < width; j++)
                    {
                        int s = AxisWeights.Half;
                        byte* q = first + j;
                        for (int t = 0; t < n; t++, q += width)
                            s += *q * w[t];
                        outRow[j] = Clip(s);
                    }
                }
            }
        }
    }

    /// <summary>Shifts four vectors of 8 accumulators back to 8 bits (saturating) and stores 32 bytes in order.</summary>
    private static void Store32(byte* dst, Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3)
    {
        // Packs work within 128-bit lanes; the permutes put the 64-bit blocks back in column order.
        var s01 = Avx2.PackSignedSaturate(Avx2.ShiftRightArithmetic(a0, AxisWeights.PrecisionBits), Avx2.ShiftRightArithmetic(a1, AxisWeights.PrecisionBits));
        var s23 = Avx2.PackSignedSaturate(Avx2.ShiftRightArithmetic(a2, AxisWeights.PrecisionBits), Avx2.ShiftRightArithmetic(a3, AxisWeights.PrecisionBits));
        s01 = Avx2.Permute4x64(s01.AsInt64(), 0b11_01_10_00).AsInt16();
        s23 = Avx2.Permute4x64(s23.AsInt64(), 0b11_01_10_00).AsInt16();
        var bytes = Avx2.PackUnsignedSaturate(s01, s23);
        Avx.Store(dst, Avx2.Permute4x64(bytes.AsInt64(), 0b11_01_10_00).AsByte());
    }

    private static byte Clip(int accumulator)
    {
        int v = accumulator >> AxisWeights.PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}
