using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace LiteVae.Model.Training;

/// <summary>
/// Moves uint8 image batches (N×3×H×W host bytes) to the device and maps them to [-1, 1] there.
///
/// On a GPU the bytes are copied into a reused pinned buffer and sent with a non-blocking copy, so the
/// host does not wait. A pinned buffer may only be overwritten once the GPU has finished reading it;
/// TorchSharp has no CUDA events, so after each upload the GPU writes the upload's number into a tiny
/// pinned counter (a non-blocking device→host copy, ordered after the upload on the stream). Before
/// reusing a buffer, the host checks that counter, and only waits (rarely: only when it runs more than
/// <see cref="Buffers"/> uploads ahead of the GPU) if that buffer's last upload has not completed.
/// On the CPU the bytes are simply copied into a fresh tensor.
/// </summary>
public sealed class InputStaging : IDisposable
{
    public const int Buffers = 2;

    private readonly Device _device;
    private readonly bool _cuda;
    private readonly Tensor?[] _pinned = new Tensor?[Buffers];
    private readonly Tensor? _counterDevice;
    private readonly Tensor? _counterHost;
    private long _uploads;

    public InputStaging(Device device)
    {
        _device = device;
        _cuda = device.type == DeviceType.CUDA;
        if (_cuda)
        {
            _counterDevice = zeros([1], ScalarType.Int64, device).DetachFromDisposeScope();
            _counterHost = zeros([1], ScalarType.Int64).pin_memory().DetachFromDisposeScope();
        }
    }

    /// <summary>Waits that happened because the host ran ahead of the GPU (for diagnostics).</summary>
    public long Waits { get; private set; }

    /// <summary>
    /// Uploads <paramref name="pixels"/> (N×3×H×W uint8, row-major) and returns the device uint8 tensor
    /// (owned by the caller's dispose scope).
    /// </summary>
    public Tensor Upload(ReadOnlySpan<byte> pixels, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (shape.Length != 4 || pixels.Length != n)
            throw new ArgumentException($"expected {n} bytes for a uint8 batch of shape [{string.Join(", ", shape)}], got {pixels.Length}.");
        if (!_cuda)
        {
            var t = empty(shape, ScalarType.Byte);
            pixels.CopyTo(t.bytes);
            return _device.type == DeviceType.CPU ? t : t.to(_device);
        }

        long upload = ++_uploads;
        int slot = (int)(upload % Buffers);
        WaitUntilCompleted(upload - Buffers);
        var buffer = _pinned[slot];
        if (buffer is null || !buffer.shape.SequenceEqual(shape))
        {
            buffer?.Dispose();
            buffer = _pinned[slot] = empty(shape, ScalarType.Byte).pin_memory().DetachFromDisposeScope();
        }
        pixels.CopyTo(buffer.bytes);
        var onDevice = buffer.to(_device, non_blocking: true);
        _counterDevice!.fill_(upload);
        _counterHost!.copy_(_counterDevice, nonBlocking: true);
        return onDevice;
    }

    /// <summary>uint8 [0, 255] → <paramref name="dtype"/> in [-1, 1] (x / 127.5 − 1), computed in fp32.</summary>
    public static Tensor ToSigned(Tensor bytes, ScalarType dtype, bool channelsLast = false)
    {
        using var scope = NewDisposeScope();
        var x = bytes.to_type(ScalarType.Float32).div_(127.5).sub_(1.0);
        if (dtype != ScalarType.Float32) x = x.to_type(dtype);
        if (channelsLast) x = MemoryLayout.ToChannelsLast(x);
        return scope.MoveToOuter(x);
    }

    private void WaitUntilCompleted(long upload)
    {
        if (upload <= 0) return;
        if (CompletedUploads() >= upload) return;
        Waits++;
        var spin = new SpinWait();
        var deadline = Environment.TickCount64 + 600_000;
        while (CompletedUploads() < upload)
        {
            spin.SpinOnce(sleep1Threshold: 50);
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException("the GPU did not finish an input upload within 10 minutes.");
        }
    }

    private long CompletedUploads()
    {
        // The counter lives in pinned host memory that the GPU writes by DMA: read it fresh each time.
        var bytes = _counterHost!.bytes;
        return BinaryPrimitives.ReadInt64LittleEndian(bytes);
    }

    public void Dispose()
    {
        foreach (var t in _pinned) t?.Dispose();
        _counterDevice?.Dispose();
        _counterHost?.Dispose();
    }
}
