using System.Buffers;

namespace LiteVae.Data.Shards;

/// <summary>
/// One sample as read from a shard: its key, its index in the shard, the encoded image and metadata
/// entries. The image bytes live in a pooled buffer the sample owns (returned on Dispose): either a buffer
/// of their own, or the buffer holding the sample's whole byte range of the shard, read at random, which the
/// image is a slice of (no copy). A sample the reader already knows is bad (no image, cut by the end of the
/// shard, too large) carries a <see cref="Problem"/> instead of an image.
/// </summary>
public sealed class RawSample : IDisposable
{
    private byte[]? _owner;
    private int _imageOffset;

    public required string Shard { get; init; }
    public required string Key { get; init; }
    /// <summary>Index of this sample among all samples of its shard, in shard order.</summary>
    public long IndexInShard { get; init; }
    public string? ImageExtension { get; private set; }
    public int ImageLength { get; private set; }
    public ReadOnlyMemory<byte> Image => _owner is null || ImageExtension is null ? ReadOnlyMemory<byte>.Empty : _owner.AsMemory(_imageOffset, ImageLength);
    public bool HasImage => _owner is not null && ImageExtension is not null;
    public Dictionary<string, byte[]>? Metadata { get; set; }
    public DataProblem? Problem { get; set; }
    /// <summary>The entry name had bytes that are not UTF-8; they appear as %XX in the key.</summary>
    public bool KeyEscaped { get; init; }

    /// <summary>Rents a buffer for the image bytes; the caller fills the returned span.</summary>
    public Span<byte> AllocateImage(string extension, int length)
    {
        DropImage();
        _owner = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        (ImageExtension, _imageOffset, ImageLength) = (extension, 0, length);
        return _owner.AsSpan(0, length);
    }

    /// <summary>Takes ownership of <paramref name="owner"/> (rented from the shared ArrayPool): the image is its
    /// bytes [<paramref name="offset"/>, +<paramref name="length"/>); null extension: no image (yet).</summary>
    internal void Own(byte[] owner)
    {
        DropImage();
        _owner = owner;
    }

    internal void SetImageSlice(string extension, int offset, int length) =>
        (ImageExtension, _imageOffset, ImageLength) = (extension, offset, length);

    public void DropImage()
    {
        if (_owner is not null) ArrayPool<byte>.Shared.Return(_owner);
        _owner = null;
        ImageExtension = null;
        ImageLength = 0;
    }

    public void Dispose() => DropImage();
}
