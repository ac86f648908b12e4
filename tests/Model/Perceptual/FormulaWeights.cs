using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Perceptual;

/// <summary>
/// The deterministic weight formula of tests/fixtures/tools/make_perceptual_fixtures.py, reproduced
/// bit for bit (an integer hash, so no floating-point library differences), and its test images.
/// </summary>
internal static class FormulaWeights
{
    public static double[] Uniform(string key, long n)
    {
        uint seed = 0;
        for (int j = 0; j < key.Length; j++) seed = unchecked(seed + (uint)(key[j] * (j + 1)));
        uint offset = unchecked(seed * 0x9E3779B9u);
        var v = new double[n];
        for (long i = 0; i < n; i++)
        {
            uint x = unchecked((uint)i + offset);
            x ^= x >> 16; x = unchecked(x * 0x7FEB352Du);
            x ^= x >> 15; x = unchecked(x * 0x846CA68Bu);
            x ^= x >> 16;
            v[i] = x / 4294967296.0 * 2.0 - 1.0;
        }
        return v;
    }

    public static float[] Values(string key, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var u = Uniform(key, n);
        Func<double, double> f;
        if (key.EndsWith("running_var")) f = b => 1.0 + 0.25 * (1.0 + b);
        else if (key.EndsWith("running_mean")) f = b => 0.1 * b;
        else if (key.StartsWith("lin") && shape.Length == 4) f = b => (1.0 + b) / shape[1];
        else if (shape.Length == 4) { double a = Math.Sqrt(6.0 / (shape[1] * shape[2] * shape[3])); f = b => b * a; }
        else if (key.EndsWith("weight")) f = b => 1.0 + 0.1 * b;
        else f = b => 0.05 * b;
        var result = new float[n];
        for (long i = 0; i < n; i++) result[i] = (float)f(u[i]);
        return result;
    }

    /// <summary>Fills every float tensor of the module's state dict; <paramref name="stripPrefix"/> is removed from keys first.</summary>
    public static void Fill(nn.Module module, string stripPrefix = "", string addPrefix = "")
    {
        using var _ = no_grad();
        foreach (var (key, t) in module.state_dict())
        {
            if (key.EndsWith("num_batches_tracked")) continue;
            string k = addPrefix + (key.StartsWith(stripPrefix) ? key[stripPrefix.Length..] : key);
            using var src = tensor(Values(k, t.shape), t.shape);
            t.copy_(src);
        }
    }

    /// <summary>0.9 sin(a h + b w + cc c + d n + 0.1), as float32.</summary>
    public static Tensor Image(int n, int h, int w, double a, double b, double cc, double d)
    {
        var v = new float[n * 3 * h * w];
        int idx = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        v[idx++] = (float)(0.9 * Math.Sin(a * y + b * x + cc * c + d * i + 0.1));
        return tensor(v, [n, 3, h, w]);
    }

    public static Tensor X0(int n, int h, int w) => Image(n, h, w, 0.31, 0.17, 1.1, 0.5);

    public static Tensor X1(int n, int h, int w) => Image(n, h, w, 0.29, -0.21, 0.7, 0.9);
}
