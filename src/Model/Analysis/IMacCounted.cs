using static TorchSharp.torch;

namespace LiteVae.Model.Analysis;

/// <summary>
/// Implemented by custom modules whose multiply-accumulates the profiler cannot see from built-in
/// layers (a modulated conv that calls functional conv2d, attention matmuls). Built-in Conv2d and
/// Linear are counted by the profiler itself; a module implementing this is counted by this method
/// only, and its children are not counted again.
/// </summary>
public interface IMacCounted
{
    /// <summary>
    /// MACs of one forward call that received <paramref name="input"/> and produced <paramref name="output"/>.
    /// Use shapes only, never values: the profiler may pass shape-only stand-ins (meta-device tensors
    /// with batch 1) for a forward that ran at batch 0.
    /// </summary>
    long CountMacs(Tensor input, Tensor output);
}
