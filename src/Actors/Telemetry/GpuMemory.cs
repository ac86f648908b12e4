using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;

namespace LiteVae.Actors.Telemetry;

/// <summary>
/// GPU memory as NVML (the NVIDIA driver's management library) reports it. TorchSharp 0.107 exposes no
/// CUDA allocator statistics, so the device view is the one number available; it includes the caching
/// allocator's reserve and other processes. Where the driver is absent (CPU machines) every read
/// returns nothing, once probed, at no further cost.
/// </summary>
public static class GpuMemory
{
    public readonly record struct Reading(int Index, ulong Total, ulong Used);

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int InitFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int CountFn(out uint count);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int HandleFn(uint index, out IntPtr device);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int MemoryFn(IntPtr device, out NvmlMemory memory);

    private sealed record Api(CountFn Count, HandleFn Handle, MemoryFn Memory);

    private static readonly Lazy<Api?> Nvml = new(Load);

    /// <summary>True when NVML loaded and initialised on this machine.</summary>
    public static bool Available => Nvml.Value is not null;

    /// <summary>One reading per GPU the driver sees; empty without a driver.</summary>
    public static IReadOnlyList<Reading> Read()
    {
        var api = Nvml.Value;
        if (api is null || api.Count(out uint count) != 0) return [];
        var list = new List<Reading>((int)count);
        for (uint i = 0; i < count; i++)
            if (api.Handle(i, out var device) == 0 && api.Memory(device, out var m) == 0)
                list.Add(new Reading((int)i, m.Total, m.Used));
        return list;
    }

    internal static IEnumerable<Measurement<long>> ObserveUsed() =>
        Read().Select(r => new Measurement<long>((long)r.Used, DeviceTag(r.Index)));

    internal static IEnumerable<Measurement<long>> ObserveTotal() =>
        Read().Select(r => new Measurement<long>((long)r.Total, DeviceTag(r.Index)));

    private static KeyValuePair<string, object?> DeviceTag(int index) => new(TelemetryTags.Device, $"gpu{index}");

    private static Api? Load()
    {
        if (!NativeLibrary.TryLoad("libnvidia-ml.so.1", out var lib) && !NativeLibrary.TryLoad("libnvidia-ml.so", out lib))
            return null;
        try
        {
            T Fn<T>(string name) => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(lib, name));
            if (Fn<InitFn>("nvmlInit_v2")() != 0) return null;
            return new Api(Fn<CountFn>("nvmlDeviceGetCount_v2"), Fn<HandleFn>("nvmlDeviceGetHandleByIndex_v2"),
                Fn<MemoryFn>("nvmlDeviceGetMemoryInfo"));
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }
}
