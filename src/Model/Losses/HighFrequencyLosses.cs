using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LiteVae.Model.Losses;

/// <summary>
/// The two high-frequency terms of LiteVAE (spec 8.1), computed in fp32 (or fp64) whatever the model's dtype.
/// Both are differentiable in the reconstruction; the fixed kernels are plain tensors (no parameters).
/// </summary>
public sealed class HighFrequencyLosses : IDisposable
{
    private readonly Tensor _haarDetail; // [3C, 1, 2, 2]: the three level-1 Haar detail kernels per colour
    private readonly Tensor _gaussian;   // [C, 1, k, k]: normalised Gaussian blur kernel per colour
    private readonly int _channels;

    /// <param name="channels">Image channels (3).</param>
    /// <param name="charbonnierEps">eps of sqrt(d^2 + eps^2) (spec 14.1: not given; 1e-3 is the common choice).</param>
    /// <param name="gaussianKernel">Blur kernel size (odd; spec: 5).</param>
    /// <param name="gaussianSigma">Blur sigma in pixels (spec: 1).</param>
    public HighFrequencyLosses(int channels = 3, double charbonnierEps = 1e-3, int gaussianKernel = 5, double gaussianSigma = 1.0, Device? device = null)
    {
        if (channels < 1) throw new ArgumentException("channels must be at least 1.");
        if (!(charbonnierEps > 0)) throw new ArgumentException($"Charbonnier eps must be positive, got {charbonnierEps}.");
        if (gaussianKernel < 3 || gaussianKernel % 2 == 0) throw new ArgumentException($"Gaussian kernel size must be odd and at least 3, got {gaussianKernel}.");
        if (!(gaussianSigma > 0)) throw new ArgumentException($"Gaussian sigma must be positive, got {gaussianSigma}.");
        _channels = channels;
        CharbonnierEps = charbonnierEps;
        GaussianKernelSize = gaussianKernel;
        GaussianSigma = gaussianSigma;
        device ??= CPU;
        _haarDetail = HaarDetailKernels(channels).to(device).DetachFromDisposeScope();
        _gaussian = GaussianKernel(channels, gaussianKernel, gaussianSigma).to(device).DetachFromDisposeScope();
    }

    public double CharbonnierEps { get; }
    public int GaussianKernelSize { get; }
    public double GaussianSigma { get; }

    /// <summary>
    /// Level-1 Haar detail bands (reference scaling: (a - b + c - d) / 2 etc., no 1/2^l), N x 3C x H/2 x W/2.
    /// The LL band is left out: the wavelet loss looks only at high frequencies.
    /// </summary>
    public Tensor DetailBands(Tensor images)
    {
        var x = AtLeastFp32(images);
        return F.conv2d(x, _haarDetail.to(x.dtype, x.device), strides: [2, 2], groups: _channels);
    }

    /// <summary>Mean over elements of sqrt((D(x̂) − D(x))^2 + eps^2) on the level-1 detail bands.</summary>
    public Tensor Wavelet(Tensor reconstruction, Tensor target)
    {
        using var scope = NewDisposeScope();
        Tensor targetBands;
        using (no_grad())
            targetBands = DetailBands(target);
        var d = DetailBands(reconstruction) - targetBands;
        var loss = (d.square() + CharbonnierEps * CharbonnierEps).sqrt().mean();
        return scope.MoveToOuter(loss);
    }

    /// <summary>x − blur(x), with reflect padding so a constant image has no high-pass content.</summary>
    public Tensor HighPass(Tensor images)
    {
        var x = AtLeastFp32(images);
        int p = GaussianKernelSize / 2;
        var padded = F.pad(x, [p, p, p, p], PaddingModes.Reflect);
        return x - F.conv2d(padded, _gaussian.to(x.dtype, x.device), groups: _channels);
    }

    /// <summary>Mean absolute difference between the high-pass residuals of x̂ and x.</summary>
    public Tensor Gaussian(Tensor reconstruction, Tensor target)
    {
        using var scope = NewDisposeScope();
        Tensor targetHigh;
        using (no_grad())
            targetHigh = HighPass(target);
        var loss = (HighPass(reconstruction) - targetHigh).abs().mean();
        return scope.MoveToOuter(loss);
    }

    /// <summary>bf16/fp16 inputs are widened to fp32; fp64 stays fp64 (gradient checks).</summary>
    private static Tensor AtLeastFp32(Tensor x) => x.dtype == ScalarType.Float64 ? x : x.to_type(ScalarType.Float32);

    private static Tensor HaarDetailKernels(int channels)
    {
        // Rows index H, columns W; the three detail kernels of the reference DWT (spec 2.2).
        float[][] k =
        [
            [0.5f, -0.5f, 0.5f, -0.5f],  // difference along W
            [0.5f, 0.5f, -0.5f, -0.5f],  // difference along H
            [0.5f, -0.5f, -0.5f, 0.5f],  // diagonal
        ];
        var w = new float[channels * 3 * 4];
        for (int c = 0; c < channels; c++)
            for (int b = 0; b < 3; b++)
                Array.Copy(k[b], 0, w, (c * 3 + b) * 4, 4);
        return tensor(w, [3L * channels, 1, 2, 2]);
    }

    private static Tensor GaussianKernel(int channels, int size, double sigma)
    {
        var g = new double[size];
        int r = size / 2;
        for (int i = 0; i < size; i++) g[i] = Math.Exp(-(i - r) * (i - r) / (2 * sigma * sigma));
        double s = g.Sum();
        var w = new float[channels * size * size];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                    w[(c * size + i) * size + j] = (float)(g[i] * g[j] / (s * s));
        return tensor(w, [channels, 1, size, size]);
    }

    public void Dispose()
    {
        _haarDetail.Dispose();
        _gaussian.Dispose();
    }
}
