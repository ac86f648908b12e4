using System.Runtime.InteropServices;

namespace LiteVae.Model.Distributed.Nccl;

/// <summary>
/// The few CUDA runtime calls the NCCL collective needs (libtorch exposes none of them through TorchSharp):
/// select the device for NCCL's communicator, and events to watch collectives from a watchdog thread.
/// Bound to the libcudart that libtorch itself loaded, so both share the device's primary context.
/// </summary>
public sealed unsafe class CudaRuntime
{
    public const int Success = 0;
    public const int ErrorNotReady = 600;
    private const uint EventDisableTiming = 0x2;

    private readonly delegate* unmanaged[Cdecl]<int, int> _setDevice;
    private readonly delegate* unmanaged[Cdecl]<int*, int> _getDevice;
    private readonly delegate* unmanaged[Cdecl]<IntPtr*, uint, int> _eventCreateWithFlags;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int> _eventRecord;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int> _eventQuery;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int> _eventSynchronize;
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int> _eventDestroy;
    private readonly delegate* unmanaged[Cdecl]<int, IntPtr> _getErrorString;
    private readonly delegate* unmanaged[Cdecl]<int*, int> _runtimeGetVersion;

    private CudaRuntime(IntPtr lib, string path)
    {
        Path = path;
        IntPtr F(string name) => NativeLibrary.TryGetExport(lib, name, out var f)
            ? f
            : throw new EntryPointNotFoundException($"{path} has no {name}: not a CUDA runtime library.");
        _setDevice = (delegate* unmanaged[Cdecl]<int, int>)F("cudaSetDevice");
        _getDevice = (delegate* unmanaged[Cdecl]<int*, int>)F("cudaGetDevice");
        _eventCreateWithFlags = (delegate* unmanaged[Cdecl]<IntPtr*, uint, int>)F("cudaEventCreateWithFlags");
        _eventRecord = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int>)F("cudaEventRecord");
        _eventQuery = (delegate* unmanaged[Cdecl]<IntPtr, int>)F("cudaEventQuery");
        _eventSynchronize = (delegate* unmanaged[Cdecl]<IntPtr, int>)F("cudaEventSynchronize");
        _eventDestroy = (delegate* unmanaged[Cdecl]<IntPtr, int>)F("cudaEventDestroy");
        _getErrorString = (delegate* unmanaged[Cdecl]<int, IntPtr>)F("cudaGetErrorString");
        _runtimeGetVersion = (delegate* unmanaged[Cdecl]<int*, int>)F("cudaRuntimeGetVersion");
    }

    public string Path { get; }

    public static readonly string[] FileNames = ["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];
    public static readonly string[] PipSubdirs = ["nvidia/cu13/lib", "nvidia/cuda_runtime/lib"];

    public static CudaRuntime Load(string? configuredPath, IReadOnlyList<string> searchDirectories)
    {
        var candidates = NativeLibraryLocator.Candidates(configuredPath, FileNames, PipSubdirs, searchDirectories,
            NativeLibraryLocator.MappedLibraries());
        var (handle, path) = NativeLibraryLocator.Load("The CUDA runtime (libcudart)", candidates,
            "It ships with a CUDA build of PyTorch (site-packages/nvidia/cu13/lib or nvidia/cuda_runtime/lib); run with LD_LIBRARY_PATH=<torch>/lib (scripts/gpu/run.sh does) or configure its path.");
        return new CudaRuntime(handle, path);
    }

    public int RuntimeVersion
    {
        get
        {
            int v;
            Check(_runtimeGetVersion(&v), "cudaRuntimeGetVersion");
            return v;
        }
    }

    public void SetDevice(int device) => Check(_setDevice(device), $"cudaSetDevice({device})");

    public int GetDevice()
    {
        int d;
        Check(_getDevice(&d), "cudaGetDevice");
        return d;
    }

    public IntPtr CreateEvent()
    {
        IntPtr e;
        Check(_eventCreateWithFlags(&e, EventDisableTiming), "cudaEventCreateWithFlags");
        return e;
    }

    /// <summary>Records on stream 0, libtorch's default (legacy) stream.</summary>
    public void RecordOnDefaultStream(IntPtr ev) => Check(_eventRecord(ev, IntPtr.Zero), "cudaEventRecord");

    /// <summary>True when the work before the event is done; false while pending; throws on a CUDA error.</summary>
    public bool EventDone(IntPtr ev)
    {
        int r = _eventQuery(ev);
        if (r == Success) return true;
        if (r == ErrorNotReady) return false;
        Check(r, "cudaEventQuery");
        return false;
    }

    public void EventSynchronize(IntPtr ev) => Check(_eventSynchronize(ev), "cudaEventSynchronize");

    public void DestroyEvent(IntPtr ev) => _eventDestroy(ev);

    public string ErrorString(int code) => Marshal.PtrToStringUTF8(_getErrorString(code)) ?? $"CUDA error {code}";

    private void Check(int code, string call)
    {
        if (code != Success)
            throw new CollectiveException($"{call} failed: {ErrorString(code)} (CUDA error {code}).");
    }
}
