using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>
/// The raw memory behind a contiguous tensor, for collectives that read and write it directly (NCCL on a
/// device pointer, the TCP ring on host memory).
///
/// The address is libtorch's <c>Tensor::data_ptr()</c> (storage start + storage offset × element size),
/// read through LibTorchSharp's own export because TorchSharp's public <c>storage&lt;T&gt;()</c> converts
/// the tensor to T's dtype first (a copy for bf16/fp16, and unsupported for several dtypes).
/// </summary>
public static class TensorMemory
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Address of element 0. The tensor must be contiguous and stay alive while the address is used.</summary>
    public static IntPtr Address(Tensor tensor, string what = "tensor")
    {
        RequireContiguous(tensor, what);
        if (tensor.numel() == 0)
            return IntPtr.Zero;
        var p = THSTensor_data(tensor.Handle);
        torch.CheckForErrors();
        if (p == IntPtr.Zero)
            throw new InvalidOperationException($"{what}: libtorch returned no data pointer (dtype {tensor.dtype}, device {tensor.device}).");
        return p;
    }

    public static void RequireContiguous(Tensor tensor, string what)
    {
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{what} of shape [{string.Join(", ", tensor.shape)}] is not contiguous: collectives work on whole buffers; pass the flat buffer (or .contiguous()).");
    }

    /// <summary>Bytes per element of the dtypes collectives carry.</summary>
    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"collectives do not carry {dtype} tensors."),
    };

    public static long Bytes(Tensor tensor) => tensor.numel() * ElementSize(tensor.dtype);
}
