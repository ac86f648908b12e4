using System.Buffers;
using LiteVae.Data.Transforms;

namespace LiteVae.Data.Pipeline;

/// <summary>
/// One sample as read from a shard: key, the encoded image (in a pooled buffer, returned on Dispose),
/// metadata entries, and where it sits in the data order. A sample the reader already knows is bad
/// (no image, cut by the end of the shard, too large) carries a <see cref="Problem"/> and still flows
/// on, so it keeps its place in the order and is counted once, by the decode stage.
/// </summary>
public sealed class RawSample : IDisposable
{
    private byte[]? _image;

    public required string Shard { get; init; }
    public required string Key { get; init; }
    /// <summary>Index of this sample among all samples of its shard, in shard order.</summary>
    public long IndexInShard { get; init; }
    public string? ImageExtension { get; private set; }
    public int ImageLength { get; private set; }
    public ReadOnlyMemory<byte> Image => _image is null ? ReadOnlyMemory<byte>.Empty : _image.AsMemory(0, ImageLength);
    public bool HasImage => _image is not null;
    public Dictionary<string, byte[]>? Metadata { get; set; }
    public DataProblem? Problem { get; set; }
    /// <summary>The entry name had bytes that are not UTF-8; they appear as %XX in the key.</summary>
    public bool KeyEscaped { get; init; }

    // Set by the pipeline.
    internal StreamCursor? CursorAfter { get; set; }
    public int Epoch { get; internal set; }
    /// <summary>Index in the epoch's logical sequence (bad samples included).</summary>
    public long Index { get; internal set; }
    /// <summary>Run-wide number of this sample over all epochs (see <see cref="DataPosition.Global"/>).</summary>
    public long Global { get; internal set; }
    internal long Sequence { get; set; }
    internal DataPosition? PositionAfter { get; set; }

    public SampleKey AugmentKey(long seed) => new(seed, Epoch, Index);

    /// <summary>Rents a buffer for the image bytes; the caller fills <see cref="ImageBuffer"/>.</summary>
    public Span<byte> AllocateImage(string extension, int length)
    {
        if (_image is not null) ArrayPool<byte>.Shared.Return(_image);
        _image = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        ImageExtension = extension;
        ImageLength = length;
        return _image.AsSpan(0, length);
    }

    public void DropImage()
    {
        if (_image is not null) ArrayPool<byte>.Shared.Return(_image);
        _image = null;
        ImageLength = 0;
    }

    public void Dispose() => DropImage();
}
