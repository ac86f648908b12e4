using System.Runtime.CompilerServices;

namespace LiteVae.Model.Tests.Support;

internal static class TestSetup
{
    /// <summary>
    /// One intra-op thread for libtorch in tests: the tensors are tiny, and on a shared 2-core
    /// machine OpenMP's spinning threads made a 32-px forward/backward 15x slower (460 ms vs 29 ms).
    /// </summary>
    [ModuleInitializer]
    internal static void SingleThreadedTorch() => TorchSharp.torch.set_num_threads(1);
}
