using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed.Nccl;

/// <summary>ncclUniqueId: 128 opaque bytes, passed by value to ncclCommInitRank*.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Internal[Bytes];

    public static NcclUniqueId From(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Bytes)
            throw new ArgumentException($"an NCCL unique id has {Bytes} bytes, got {bytes.Length}.");
        var id = new NcclUniqueId();
        bytes.CopyTo(new Span<byte>(id.Internal, Bytes));
        return id;
    }

    public byte[] ToArray()
    {
        var b = new byte[Bytes];
        fixed (byte* p = Internal)
            new ReadOnlySpan<byte>(p, Bytes).CopyTo(b);
        return b;
    }
}

/// <summary>
/// The ncclConfig_t prefix of NCCL 2.14 (size, magic, version, blocking). NCCL copies only <c>size</c> bytes
/// and fills every field newer than <c>version</c> with its defaults (init.cc parseCommConfig), so this short
/// struct is valid for every NCCL from 2.14 on.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NcclConfig214
{
    public nuint Size;
    public uint Magic;
    public uint Version;
    public int Blocking;

    public static NcclConfig214 NonBlocking() => new()
    {
        Size = (nuint)Marshal.SizeOf<NcclConfig214>(),
        Magic = 0xcafebeef,
        Version = 21403,
        Blocking = 0,
    };
}

/// <summary>NCCL result codes (nccl.h).</summary>
public enum NcclResult
{
    Success = 0, UnhandledCudaError = 1, SystemError = 2, InternalError = 3, InvalidArgument = 4,
    InvalidUsage = 5, RemoteError = 6, InProgress = 7, Timeout = 8,
}

/// <summary>
/// libnccl.so.2 bound by function pointers (the path is only known at run time, so no DllImport). Only the
/// calls the collective needs; signatures from nccl.h, stable since NCCL 2.14.
/// </summary>
public sealed unsafe class NcclLibrary
{
    internal readonly delegate* unmanaged[Cdecl]<int*, NcclResult> GetVersion;
    internal readonly delegate* unmanaged[Cdecl]<NcclUniqueId*, NcclResult> GetUniqueId;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr*, int, NcclUniqueId, int, NcclConfig214*, NcclResult> CommInitRankConfig;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, NcclResult> AllReduceFn;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, NcclResult> BroadcastFn;
    internal readonly delegate* unmanaged[Cdecl]<NcclResult> GroupStart;
    internal readonly delegate* unmanaged[Cdecl]<NcclResult> GroupEnd;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, NcclResult> CommAbort;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, NcclResult> CommDestroy;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, NcclResult> CommFinalize;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, NcclResult*, NcclResult> CommGetAsyncError;
    internal readonly delegate* unmanaged[Cdecl]<NcclResult, IntPtr> GetErrorString;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr> GetLastError;

    private NcclLibrary(IntPtr lib, string path)
    {
        Path = path;
        IntPtr F(string name) => NativeLibrary.TryGetExport(lib, name, out var f)
            ? f
            : throw new EntryPointNotFoundException($"{path} has no {name}: NCCL 2.14 or newer is needed.");
        GetVersion = (delegate* unmanaged[Cdecl]<int*, NcclResult>)F("ncclGetVersion");
        GetUniqueId = (delegate* unmanaged[Cdecl]<NcclUniqueId*, NcclResult>)F("ncclGetUniqueId");
        CommInitRankConfig = (delegate* unmanaged[Cdecl]<IntPtr*, int, NcclUniqueId, int, NcclConfig214*, NcclResult>)F("ncclCommInitRankConfig");
        AllReduceFn = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, NcclResult>)F("ncclAllReduce");
        BroadcastFn = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, NcclResult>)F("ncclBroadcast");
        GroupStart = (delegate* unmanaged[Cdecl]<NcclResult>)F("ncclGroupStart");
        GroupEnd = (delegate* unmanaged[Cdecl]<NcclResult>)F("ncclGroupEnd");
        CommAbort = (delegate* unmanaged[Cdecl]<IntPtr, NcclResult>)F("ncclCommAbort");
        CommDestroy = (delegate* unmanaged[Cdecl]<IntPtr, NcclResult>)F("ncclCommDestroy");
        CommFinalize = (delegate* unmanaged[Cdecl]<IntPtr, NcclResult>)F("ncclCommFinalize");
        CommGetAsyncError = (delegate* unmanaged[Cdecl]<IntPtr, NcclResult*, NcclResult>)F("ncclCommGetAsyncError");
        GetErrorString = (delegate* unmanaged[Cdecl]<NcclResult, IntPtr>)F("ncclGetErrorString");
        GetLastError = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr>)F("ncclGetLastError");
        int v;
        Check(GetVersion(&v), "ncclGetVersion");
        Version = v;
        if (v < 21400)
            throw new NotSupportedException($"{path} is NCCL {VersionText}; 2.14 or newer is needed (non-blocking communicators).");
    }

    public string Path { get; }

    /// <summary>NCCL_VERSION_CODE, e.g. 22703 for 2.27.3.</summary>
    public int Version { get; }

    public string VersionText => $"{Version / 10000}.{Version / 100 % 100}.{Version % 100}";

    public static readonly string[] FileNames = ["libnccl.so.2", "libnccl.so"];
    public static readonly string[] PipSubdirs = ["nvidia/nccl/lib"];

    /// <summary>
    /// Loads NCCL (see <see cref="NativeLibraryLocator"/> for the search order). CUDA torch is initialised
    /// first so that the copy libtorch links is found and used.
    /// </summary>
    public static NcclLibrary Load(string? configuredPath, IReadOnlyList<string> searchDirectories)
    {
        if (!cuda.is_available())
            throw new InvalidOperationException("NCCL needs CUDA, and libtorch reports no CUDA device: use the tcp backend on CPU machines.");
        var candidates = NativeLibraryLocator.Candidates(configuredPath, FileNames, PipSubdirs, searchDirectories,
            NativeLibraryLocator.MappedLibraries());
        var (handle, path) = NativeLibraryLocator.Load("NCCL (libnccl.so.2)", candidates,
            "It ships with a CUDA build of PyTorch (site-packages/nvidia/nccl/lib/libnccl.so.2): run with that PyTorch's libtorch (scripts/gpu/run.sh) or configure the library path.");
        return new NcclLibrary(handle, path);
    }

    public string ErrorString(NcclResult r) => Marshal.PtrToStringUTF8(GetErrorString(r)) ?? r.ToString();

    internal string LastError(IntPtr comm)
    {
        var s = Marshal.PtrToStringUTF8(GetLastError(comm));
        return string.IsNullOrWhiteSpace(s) ? "" : $" ({s.Trim()})";
    }

    internal void Check(NcclResult r, string call, IntPtr comm = default)
    {
        if (r != NcclResult.Success && r != NcclResult.InProgress)
            throw new CollectiveException($"{call} failed: {ErrorString(r)}{LastError(comm)} [NCCL {r}]. Run with NCCL_DEBUG=WARN for NCCL's own log.");
    }

    public NcclUniqueId NewUniqueId()
    {
        NcclUniqueId id;
        Check(GetUniqueId(&id), "ncclGetUniqueId");
        return id;
    }
}
