using System.Runtime.InteropServices;

namespace LiteVae.Model.Training;

/// <summary>
/// libtorch switches that TorchSharp 0.107 does not expose, reached through their exported C++
/// symbols in libtorch_cpu.so (already loaded by TorchSharp), and device memory from the CUDA runtime.
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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int MemGetInfoFn(out nuint free, out nuint total);

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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int NvmlInitFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int NvmlHandleFn(uint index, out IntPtr device);

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int NvmlMemoryFn(IntPtr device, out NvmlMemory memory);

    /// <summary>
    /// Memory in use on the CUDA device (total − free, from cudaMemGetInfo of the CUDA runtime libtorch
    /// loaded, else NVML's used memory of GPU <paramref name="index"/>): what the caching allocator holds
    /// plus the CUDA context and any other process. Null without either library.
    /// </summary>
    public static long? CudaDeviceMemoryUsed(int index = 0)
    {
        foreach (var lib in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" })
            if (TryGet(lib, "cudaMemGetInfo", out MemGetInfoFn? info) && info!(out var free, out var total) == 0)
                return (long)(total - free);
        if (TryGet("libnvidia-ml.so.1", "nvmlInit_v2", out NvmlInitFn? init)
            && TryGet("libnvidia-ml.so.1", "nvmlDeviceGetHandleByIndex_v2", out NvmlHandleFn? handle)
            && TryGet("libnvidia-ml.so.1", "nvmlDeviceGetMemoryInfo", out NvmlMemoryFn? memory)
            && init!() == 0 && handle!((uint)index, out var device) == 0 && memory!(device, out var m) == 0)
            return (long)m.Used;
        return null;
    }

    private static bool TryGet<T>(string library, string symbol, out T? function) where T : Delegate
    {
        function = null;
        if (!NativeLibrary.TryLoad(library, out var handle) || !NativeLibrary.TryGetExport(handle, symbol, out var address))
            return false;
        function = Marshal.GetDelegateForFunctionPointer<T>(address);
        return true;
    }
}
