using LiteVae.Model.Perceptual;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Metrics;

/// <summary>One image's metrics; null where the metric is unavailable (see <see cref="MetricSummary"/>).</summary>
public sealed record ImageMetrics(long Index, double Psnr, double Ssim, double? MsSsim, double? Lpips);

/// <summary>One aggregate: its mean (or rFID value), or why it is unavailable.</summary>
public sealed record MetricValue(string Name, double? Value, string? Unavailable, string? Note = null);

/// <summary>The aggregates of a <see cref="MetricSet"/>.</summary>
public sealed record MetricSummary(long Images, IReadOnlyList<MetricValue> Values, FrechetResult? Fid)
{
    public MetricValue this[string name] => Values.Single(v => v.Name == name);
}

/// <summary>
/// Accumulates reconstruction metrics over an evaluation set: feed batches of originals and
/// reconstructions (uint8, or float in [-1, 1]; both are compared as 8-bit images, see
/// <see cref="MetricImages"/>), get per-image rows (for a worst-first table) and the means, plus rFID
/// between the Inception statistics of all originals and all reconstructions. PSNR and SSIM are
/// always computed; MS-SSIM needs images of at least 161 px; LPIPS and rFID need their weight files
/// and otherwise report why they are missing. Work runs on the device of the networks (or of the
/// inputs when there are none). Memory is constant in the number of images apart from the rows.
/// </summary>
public sealed class MetricSet : IDisposable
{
    public const string PsnrName = "psnr";
    public const string SsimName = "ssim";
    public const string MsSsimName = "ms_ssim";
    public const string LpipsName = "lpips";
    public const string FidName = "rfid";

    private readonly Availability<Lpips> _lpips;
    private readonly Availability<FidInceptionV3> _inception;
    private readonly FeatureStatistics _originalStats = new(FidInceptionV3.FeatureDim);
    private readonly FeatureStatistics _reconStats = new(FidInceptionV3.FeatureDim);
    private readonly List<ImageMetrics> _rows = [];
    private string? _msSsimUnavailable;

    public MetricSet(Availability<Lpips> lpips, Availability<FidInceptionV3> inception)
    {
        _lpips = lpips;
        _inception = inception;
    }

    public IReadOnlyList<ImageMetrics> Rows => _rows;

    public long Count => _rows.Count;

    /// <summary>Inception statistics of the originals so far (to ship to another worker with <see cref="FeatureStatistics.Export"/>).</summary>
    public FeatureStatistics OriginalFeatures => _originalStats;

    /// <summary>Inception statistics of the reconstructions so far.</summary>
    public FeatureStatistics ReconstructionFeatures => _reconStats;

    /// <summary>Scores one batch; returns its rows (indices continue from the previous batches unless given).</summary>
    public IReadOnlyList<ImageMetrics> Add(Tensor originals, Tensor reconstructions, long? firstIndex = null)
    {
        MetricImages.CheckPair(originals, reconstructions);
        long n = originals.shape[0];
        if (n == 0) return [];
        long start = firstIndex ?? (_rows.Count == 0 ? 0 : _rows[^1].Index + 1);
        var device = NetworkDevice() ?? originals.device;

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var a = MetricImages.ToPixels255(originals.to(device), "originals");
        var b = MetricImages.ToPixels255(reconstructions.to(device), "reconstructions");
        var psnr = Psnr.PerImage(a, b).cpu();
        var ssim = Ssim.PerImage(a, b).cpu();

        Tensor? msssim = null;
        if (a.shape[2] >= MsSsim.MinSide && a.shape[3] >= MsSsim.MinSide) msssim = MsSsim.PerImage(a, b).cpu();
        else _msSsimUnavailable ??= $"images are {a.shape[2]} x {a.shape[3]}; MS-SSIM needs at least {MsSsim.MinSide} x {MsSsim.MinSide} (five scales of an 11-pixel window).";

        Tensor? lpips = null;
        Tensor? signedA = null, signedB = null;
        if (_lpips.IsAvailable || _inception.IsAvailable)
        {
            signedA = MetricImages.ToSigned(a);
            signedB = MetricImages.ToSigned(b);
        }
        if (_lpips.Value is { } lp) lpips = lp.call(signedB!, signedA!).to(float64).cpu();
        if (_inception.Value is { } inc)
        {
            _originalStats.Add(inc.call(signedA!));
            _reconStats.Add(inc.call(signedB!));
        }

        var p = psnr.data<double>().ToArray();
        var s = ssim.data<double>().ToArray();
        var m = msssim?.data<double>().ToArray();
        var l = lpips?.data<double>().ToArray();
        var rows = new ImageMetrics[n];
        for (int i = 0; i < n; i++)
            rows[i] = new ImageMetrics(start + i, p[i], s[i], m?[i], l?[i]);
        _rows.AddRange(rows);
        return rows;
    }

    /// <summary>Takes in another worker's rows and Inception statistics (the other is left unchanged).</summary>
    public void Merge(MetricSet other)
    {
        _rows.AddRange(other._rows);
        _originalStats.Merge(other._originalStats);
        _reconStats.Merge(other._reconStats);
        _msSsimUnavailable ??= other._msSsimUnavailable;
    }

    /// <summary>
    /// Means over all images so far, and rFID unless <paramref name="computeFid"/> is false (a
    /// progress summary: the 2048-d float64 eigendecompositions take seconds on a CPU).
    /// </summary>
    public MetricSummary Summarize(bool computeFid = true)
    {
        var values = new List<MetricValue>
        {
            Mean(PsnrName, r => r.Psnr, null, "per-image PSNR (dB) on 8-bit images, averaged; identical images count as +inf"),
            Mean(SsimName, r => r.Ssim, null, "Gaussian 11x11, sigma 1.5, per channel, data range 255"),
            Mean(MsSsimName, r => r.MsSsim, _msSsimUnavailable, null),
            Mean(LpipsName, r => r.Lpips, _lpips.Reason, _lpips.Value is { } lp ? $"LPIPS v0.1, {lp.Net.ToString().ToLowerInvariant()}" : null),
        };
        FrechetResult? fid = null;
        if (!_inception.IsAvailable) values.Add(new MetricValue(FidName, null, _inception.Reason));
        else if (!computeFid) values.Add(new MetricValue(FidName, null, "not computed for this summary (computeFid: false)."));
        else if (_originalStats.Count < 2) values.Add(new MetricValue(FidName, null, $"rFID needs at least 2 images, have {_originalStats.Count}."));
        else
        {
            fid = FrechetDistance.Compute(_originalStats, _reconStats);
            string note = $"{_originalStats.Count} images" + (_originalStats.Count < 10_000 ? " (FID is biased upwards below ~10k images; compare only equal counts)" : "")
                + (fid.SqrtResidual > 1e-6 ? $"; matrix square root residual {fid.SqrtResidual:G3}" : "");
            values.Add(new MetricValue(FidName, fid.Value, null, note));
        }
        return new MetricSummary(_rows.Count, values, fid);
    }

    /// <summary>Rows ordered worst first: by LPIPS (highest) when every row has it, else by PSNR (lowest).</summary>
    public static IReadOnlyList<ImageMetrics> WorstFirst(IEnumerable<ImageMetrics> rows)
    {
        var list = rows.ToList();
        return list.All(r => r.Lpips.HasValue)
            ? list.OrderByDescending(r => r.Lpips!.Value).ThenBy(r => r.Index).ToList()
            : list.OrderBy(r => r.Psnr).ThenBy(r => r.Index).ToList();
    }

    private MetricValue Mean(string name, Func<ImageMetrics, double?> pick, string? unavailable, string? note)
    {
        if (unavailable is not null && _rows.All(r => pick(r) is null)) return new MetricValue(name, null, unavailable);
        if (_rows.Count == 0) return new MetricValue(name, null, "no images were evaluated.");
        var values = _rows.Select(pick).Where(v => v.HasValue).Select(v => v!.Value).ToList();
        if (values.Count < _rows.Count) note = $"{note}{(note is null ? "" : "; ")}over {values.Count} of {_rows.Count} images";
        return new MetricValue(name, values.Average(), null, note);
    }

    private Device? NetworkDevice()
    {
        nn.Module? m = (nn.Module?)_lpips.Value ?? _inception.Value;
        return m?.parameters().FirstOrDefault()?.device;
    }

    /// <summary>Disposes the statistics; the networks belong to the caller.</summary>
    public void Dispose()
    {
        _originalStats.Dispose();
        _reconStats.Dispose();
    }
}
