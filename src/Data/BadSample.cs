namespace LiteVae.Data;

/// <summary>Why a sample (or a part of a shard) was skipped. Every skip is counted under one of these.</summary>
public enum BadReason
{
    /// <summary>The image entry has zero bytes.</summary>
    EmptyFile,
    /// <summary>No decoder recognises the bytes (e.g. a text file named .jpg).</summary>
    NotAnImage,
    /// <summary>The image data ends early (a JPEG cut short, a PNG missing its last chunks).</summary>
    TruncatedImage,
    /// <summary>The decoder rejected the data (bad checksum, invalid stream).</summary>
    CorruptImage,
    /// <summary>Width × height is above the pixel limit (a decompression-bomb guard, checked from the header).</summary>
    TooManyPixels,
    /// <summary>The file is larger than the encoded-size limit.</summary>
    FileTooLarge,
    /// <summary>A sample with metadata only (no jpg/jpeg/png/webp entry).</summary>
    NoImage,
    /// <summary>Unreadable tar headers; the reader skipped to the next valid header.</summary>
    CorruptTar,
    /// <summary>The shard ends inside an entry; the entry that was cut is skipped.</summary>
    TruncatedShard,
    /// <summary>A shard file is missing or a URL could not be read; the whole shard is skipped.</summary>
    UnreadableShard,
    /// <summary>An image file of a folder source could not be read.</summary>
    UnreadableFile,
}

public static class BadReasonNames
{
    /// <summary>The kebab-case name used in logs, statistics and reports (e.g. <c>truncated-image</c>).</summary>
    public static string Name(this BadReason reason) => reason switch
    {
        BadReason.EmptyFile => "empty-file",
        BadReason.NotAnImage => "not-an-image",
        BadReason.TruncatedImage => "truncated-image",
        BadReason.CorruptImage => "corrupt-image",
        BadReason.TooManyPixels => "too-many-pixels",
        BadReason.FileTooLarge => "file-too-large",
        BadReason.NoImage => "no-image",
        BadReason.CorruptTar => "corrupt-tar",
        BadReason.TruncatedShard => "truncated-shard",
        BadReason.UnreadableShard => "unreadable-shard",
        BadReason.UnreadableFile => "unreadable-file",
        _ => reason.ToString(),
    };
}

/// <summary>Thrown by decoders and transforms for one bad sample; the pipeline counts it and moves on.</summary>
public sealed class BadSampleException(BadReason reason, string detail) : Exception($"{reason.Name()}: {detail}")
{
    public BadReason Reason { get; } = reason;
    public string Detail { get; } = detail;
}

/// <summary>One counted problem: which shard, which sample key (when known), why, and details.</summary>
public sealed record DataProblem(BadReason Reason, string Shard, string? Key, string Detail)
{
    public override string ToString() =>
        $"{Reason.Name()}: shard {Shard}" + (Key is null ? "" : $" key {Key}") + $": {Detail}";
}
