using System.Runtime.InteropServices;
using LiteVae.Model.Distributed;
using static TorchSharp.torch;

namespace LiteVae.Model.Tests.Distributed;

public class TensorMemoryTests
{
    [Fact]
    public void AddressIsTheStorageStartPlusTheOffsetAndWritesAreVisible()
    {
        using var buf = arange(10, dtype: ScalarType.Float32);
        using var view = buf.narrow(0, 3, 4);
        var p = TensorMemory.Address(view);
        var storageStart = buf.storage<float>().data_ptr();
        Assert.Equal(storageStart + 3 * sizeof(float), p);
        Marshal.Copy(new[] { -1f }, 0, p, 1);
        Assert.Equal(-1f, buf[3].item<float>());
    }

    [Fact]
    public void Bf16AddressIsReadWithoutConversion()
    {
        using var b = tensor(new float[] { 1, 2, 3 }).to(ScalarType.BFloat16);
        var p = TensorMemory.Address(b);
        var raw = new short[3];
        Marshal.Copy(p, raw, 0, 3);
        Assert.Equal(unchecked((short)0x3F80), raw[0]);   // bf16 1.0 = the top half of fp32 0x3F800000
        Assert.Equal(unchecked((short)0x4040), raw[2]);   // 3.0
    }

    [Fact]
    public void NonContiguousTensorsAreRefusedByName()
    {
        using var m = zeros(3, 4);
        using var t = m.t();
        var e = Assert.Throws<ArgumentException>(() => TensorMemory.Address(t, "gradient bucket"));
        Assert.Contains("gradient bucket", e.Message);
    }
}
