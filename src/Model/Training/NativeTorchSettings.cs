using System.Runtime.InteropServices;

namespace LiteVae.Model.Training;

/// <summary>
/// libtorch switches that TorchSharp 0.107 does not expose, reached through their exported C++
/// symbols in libtorch_cpu.so (already loaded by TorchSharp).
///
/// cuDNN benchmark mode: <c>at::globalContext().setBenchmarkCuDNN(bool)</c>. Both functions are plain
/// exported symbols (Itanium ABI: the Context&amp; comes back in a register and is passed as the implicit
/// <c>this</c>); the setter only stores a bool. The write is verified by reading it back through
/// <c>benchmarkCuDNN() const</c>; any missing symbol makes the call a no-op that returns false, so an
/// ABI change in a future libtorch cannot do harm beyond "not available".
/// </summary>
public static class NativeTorchSettings
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetBoolFn(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.I1)]
    private delegate bool GetBoolFn(IntPtr context);

    private const string GlobalContext = "_ZN2at13globalContextEv";
    private const string SetBenchmark = "_ZN2at7Context17setBenchmarkCuDNNEb";
    private const string GetBenchmark = "_ZNK2at7Context14benchmarkCuDNNEv";

    /// <summary>Turns cuDNN's autotuner on or off; returns true when the setting is confirmed.</summary>
    public static bool TrySetCudnnBenchmark(bool enabled)
    {
        _ = TorchSharp.torch.cuda.is_available(); // makes sure TorchSharp has loaded libtorch
        if (!TryGet("libtorch_cpu.so", GlobalContext, out GlobalContextFn? context)
            || !TryGet("libtorch_cpu.so", SetBenchmark, out SetBoolFn? set)
            || !TryGet("libtorch_cpu.so", GetBenchmark, out GetBoolFn? get))
            return false;
        IntPtr ctx = context!();
        if (ctx == IntPtr.Zero) return false;
        set!(ctx, enabled);
        return get!(ctx) == enabled;
    }

    /// <summary>cuDNN benchmark mode as libtorch reports it, or null when the symbol is not there.</summary>
    public static bool? CudnnBenchmark()
    {
        if (!TryGet("libtorch_cpu.so", GlobalContext, out GlobalContextFn? context)
            || !TryGet("libtorch_cpu.so", GetBenchmark, out GetBoolFn? get))
            return null;
        return get!(context!());
    }

    /// <summary>Memory in use on CUDA device <paramref name="index"/>: see <see cref="GpuMemory.DeviceUsed"/>
    /// (the one GPU-memory reader).</summary>
    public static long? CudaDeviceMemoryUsed(int index = 0) => GpuMemory.DeviceUsed(index);

    private static bool TryGet<T>(string library, string symbol, out T? function) where T : Delegate
    {
        function = null;
        if (!NativeLibrary.TryLoad(library, out var handle) || !NativeLibrary.TryGetExport(handle, symbol, out var address))
            return false;
        function = Marshal.GetDelegateForFunctionPointer<T>(address);
        return true;
    }
}
