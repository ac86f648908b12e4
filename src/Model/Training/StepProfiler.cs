using System.Diagnostics;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Where a training step's time goes: <see cref="Mark"/> synchronises the device and charges the time
/// since the previous mark to the named phase. Only for profiling runs (every mark is a full GPU
/// sync, which training never does); the trainer calls it only when one is attached.
/// </summary>
public sealed class StepProfiler
{
    private readonly Device _device;
    private readonly Dictionary<string, double> _milliseconds = new();
    private readonly List<string> _order = [];
    private readonly Stopwatch _clock = new();

    public StepProfiler(Device device) => _device = device;

    public int Steps { get; private set; }

    /// <summary>Starts timing a step (synchronises first so earlier work is not charged to it).</summary>
    public void BeginStep()
    {
        Sync();
        _clock.Restart();
    }

    public void Mark(string phase)
    {
        Sync();
        double ms = _clock.Elapsed.TotalMilliseconds;
        _clock.Restart();
        if (!_milliseconds.ContainsKey(phase))
        {
            _milliseconds[phase] = 0;
            _order.Add(phase);
        }
        _milliseconds[phase] += ms;
    }

    public void EndStep() => Steps++;

    /// <summary>Mean milliseconds per step of each phase, in first-seen order.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> MeanMilliseconds() =>
        _order.Select(p => new KeyValuePair<string, double>(p, _milliseconds[p] / Math.Max(1, Steps))).ToList();

    private void Sync()
    {
        if (_device.type == TorchSharp.DeviceType.CUDA)
            cuda.synchronize(_device);
    }
}
