using LiteVae.Model.Distributed.Nccl;

namespace LiteVae.Model.Tests.Distributed;

public class NativeLibraryLocatorTests
{
    [Fact]
    public void FindsNcclInThePipLayoutNextToTheLoadedLibtorchAndPrefersAnAlreadyLoadedCopy()
    {
        var root = Directory.CreateTempSubdirectory("litevae-nccl-").FullName;
        try
        {
            var torchLib = Directory.CreateDirectory(Path.Combine(root, "site-packages", "torch", "lib")).FullName;
            var ncclDir = Directory.CreateDirectory(Path.Combine(root, "site-packages", "nvidia", "nccl", "lib")).FullName;
            File.WriteAllText(Path.Combine(ncclDir, "libnccl.so.2"), "");
            var maps = Path.Combine(root, "maps");
            File.WriteAllLines(maps,
            [
                $"7f0000000000-7f0000001000 r-xp 00000000 08:01 1 {torchLib}/libtorch_cuda.so",
                "7f0000002000-7f0000003000 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6",
                "7f0000004000-7f0000005000 rw-p 00000000 00:00 0 [heap]",
            ]);
            var mapped = NativeLibraryLocator.MappedLibraries(maps);
            Assert.Equal(torchLib, NativeLibraryLocator.LoadedTorchLibDirectory(mapped));
            var candidates = NativeLibraryLocator.Candidates(null, NcclLibrary.FileNames, NcclLibrary.PipSubdirs, [], mapped);
            var firstExisting = candidates.First(c => File.Exists(c.Path));
            Assert.Equal(Path.Combine(ncclDir, "libnccl.so.2"), Path.GetFullPath(firstExisting.Path));
            Assert.Equal("the loaded PyTorch's site-packages", firstExisting.Source);

            // A copy already mapped into the process (libtorch_cuda links NCCL) comes first.
            var withLoaded = mapped.Append("/opt/other/libnccl.so.2").ToList();
            Assert.Equal("/opt/other/libnccl.so.2", NativeLibraryLocator.Candidates(null, NcclLibrary.FileNames, NcclLibrary.PipSubdirs, [], withLoaded)[0].Path);

            // An explicit path is the only candidate.
            var only = NativeLibraryLocator.Candidates("/x/libnccl.so.2", NcclLibrary.FileNames, NcclLibrary.PipSubdirs, ["/y"], withLoaded);
            Assert.Single(only);
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public void NotFoundNamesEveryPlaceTriedAndWhatToDo()
    {
        var e = Assert.Throws<DllNotFoundException>(() => NativeLibraryLocator.Load("NCCL (libnccl.so.2)",
            [("/nonexistent/nvidia/nccl/lib/libnccl.so.2", "a search directory"), ("libnccl-does-not-exist.so.9", "the dynamic loader's search path")],
            "Configure the library path."));
        Assert.Contains("/nonexistent/nvidia/nccl/lib/libnccl.so.2 (a search directory: not there)", e.Message);
        Assert.Contains("libnccl-does-not-exist.so.9", e.Message);
        Assert.Contains("Configure the library path.", e.Message);
    }
}

public class NcclInteropLayoutTests
{
    [Fact]
    public void UniqueIdIs128BytesByValueAndRoundTrips()
    {
        Assert.Equal(128, System.Runtime.InteropServices.Marshal.SizeOf<NcclUniqueId>());
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(bytes, NcclUniqueId.From(bytes).ToArray());
        Assert.Throws<ArgumentException>(() => NcclUniqueId.From(new byte[127]));
    }
}
