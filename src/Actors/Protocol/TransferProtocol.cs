using Akka.Actor;
using LiteVae.Model.Checkpoints;

namespace LiteVae.Actors.Protocol;

/// <summary>
/// Copying a checkpoint between nodes (no shared disk needed): a <see cref="Transfer.CheckpointFetch"/> asks a node's
/// <see cref="Transfer.CheckpointServer"/> for the checkpoint's manifest (every file with size and SHA-256), then for
/// one chunk at a time (the receiver's mailbox and the connection never flood), then releases it. The server keeps the
/// checkpoint pinned against retention from the manifest until the release. <paramref name="Session"/> names one
/// receiver's transfer (its pin).
/// </summary>
public static class TransferProtocol
{
    /// <summary>Where a run lives: the coordinator node's run directory, its id (<see cref="RunDirectory.IdFile"/>: a node
    /// reading the same id there shares the disk) and the checkpoint server that serves its checkpoints.</summary>
    public sealed record RunHome(string RunDir, string Id, IActorRef Server);

    public sealed record GetManifest(string Checkpoint, string Session) : ILiteVaeMessage;

    public sealed record Manifest(string Checkpoint, long Step, IReadOnlyList<FileDigest> Files) : ILiteVaeMessage
    {
        public bool Equals(Manifest? o) => o is not null && Checkpoint == o.Checkpoint && Step == o.Step && Files.SequenceEqual(o.Files);
        public override int GetHashCode() => HashCode.Combine(Checkpoint, Step);
    }

    public sealed record GetChunk(string Checkpoint, string File, long Offset, int Length, string Session) : ILiteVaeMessage;

    /// <summary>Bytes [Offset, Offset + Data.Length) of one file (binary on the wire, not JSON).</summary>
    public sealed record Chunk(string Checkpoint, string File, long Offset, byte[] Data) : ILiteVaeMessage
    {
        public bool Equals(Chunk? o) => o is not null && Checkpoint == o.Checkpoint && File == o.File && Offset == o.Offset && Data.AsSpan().SequenceEqual(o.Data);
        public override int GetHashCode() => HashCode.Combine(Checkpoint, File, Offset);
    }

    public sealed record Release(string Checkpoint, string Session) : ILiteVaeMessage;

    /// <summary>The server cannot serve it (gone, incomplete, not a checkpoint); <paramref name="Reason"/> names the path.</summary>
    public sealed record Refused(string Checkpoint, string Reason) : ILiteVaeMessage;
}
