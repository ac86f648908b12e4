using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Support;

internal static class TensorAssert
{
    /// <summary>max|actual - expected| / max|expected| &lt;= tolerance (the fixtures' "relative" error).</summary>
    public static void RelativeClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var e = expected.to(float64);
        using var a = actual.to(float64);
        double scale = e.abs().max().item<double>();
        double err = (a - e).abs().max().item<double>();
        Assert.True(scale > 0, $"{what}: expected tensor is all zeros; the check would be meaningless.");
        Assert.True(err <= tolerance * scale, $"{what}: max abs error {err:E3} exceeds {tolerance:E1} x max |expected| {scale:E3} (relative {err / scale:E3}).");
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a.to(float64) - b.to(float64)).abs().max();
        return d.item<double>();
    }
}
