using LiteVae.Model.Metrics;
using LiteVae.Model.Perceptual;
using static TorchSharp.torch;

namespace LiteVae.Host.Evaluation;

/// <summary>Which LPIPS backbone an evaluation reports (spec 10.1: VGG, the one the training loss uses).</summary>
internal enum LpipsChoice
{
    Vgg,
    Alex,
    None,
}

/// <summary>
/// The frozen networks of an evaluation (LPIPS and the FID Inception), loaded once from the weights
/// folder onto the evaluation device, or the reason each is unavailable. A training run keeps one
/// instance for all its checkpoint evaluations. Disposes the networks it loaded.
/// </summary>
internal sealed class MetricNetworks : IDisposable
{
    private MetricNetworks(Availability<Lpips> lpips, Availability<FidInceptionV3> inception)
    {
        Lpips = lpips;
        Inception = inception;
    }

    public Availability<Lpips> Lpips { get; }

    public Availability<FidInceptionV3> Inception { get; }

    public static LpipsChoice ParseLpips(string text, string what = "--lpips") => text.Trim().ToLowerInvariant() switch
    {
        "vgg" => LpipsChoice.Vgg,
        "alex" or "alexnet" => LpipsChoice.Alex,
        "none" or "off" => LpipsChoice.None,
        _ => throw new ArgumentException($"{what} '{text}': use vgg, alex or none."),
    };

    /// <param name="lpipsOff">Why LPIPS is off when <paramref name="lpips"/> is None (names the flag or key).</param>
    /// <param name="rfidOff">Why rFID is off; null computes it.</param>
    public static MetricNetworks Load(WeightFiles files, LpipsChoice lpips, Device device, string lpipsOff = "LPIPS: switched off (--lpips none).",
        string? rfidOff = null)
    {
        var l = lpips == LpipsChoice.None
            ? Availability<Lpips>.Unavailable(lpipsOff)
            : PretrainedNetworks.LoadLpips(files, lpips == LpipsChoice.Vgg ? LpipsNet.Vgg : LpipsNet.Alex, device);
        var i = rfidOff is not null
            ? Availability<FidInceptionV3>.Unavailable(rfidOff)
            : PretrainedNetworks.LoadFidInception(files, device);
        return new MetricNetworks(l, i);
    }

    /// <summary>Networks already at hand (tests, benchmarks).</summary>
    public static MetricNetworks Of(Availability<Lpips> lpips, Availability<FidInceptionV3> inception) => new(lpips, inception);

    public MetricSet NewMetricSet() => new(Lpips, Inception);

    public void Dispose()
    {
        Lpips.Value?.Dispose();
        Inception.Value?.Dispose();
    }
}
