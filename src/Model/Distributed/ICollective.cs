using static TorchSharp.torch;

namespace LiteVae.Model.Distributed;

/// <summary>How <see cref="ICollective.AllReduce(Tensor, ReduceOp)"/> combines the ranks' values.</summary>
public enum ReduceOp
{
    Sum,
    /// <summary>Sum divided by the number of ranks (the data-parallel gradient mean).</summary>
    Average,
}

/// <summary>
/// Collective operations over a fixed group of ranks (one per device), in the MPI/NCCL sense: every rank
/// calls the same operations in the same order with tensors of the same shape and dtype.
///
/// Semantics every implementation keeps:
/// - Operations are in place on contiguous tensors; results are bit-identical on every rank (so weights
///   that start identical stay identical).
/// - Device tensors are handled on the device's current stream, asynchronously: the call returns once the
///   work is queued behind the libtorch kernels that produced the input, and later kernels see the result.
///   CPU tensors are done when the call returns.
/// - Never hang: a peer that disappears, a timeout or <see cref="Abort"/> (from any thread) breaks the
///   group. The blocked or next call throws <see cref="CollectiveException"/>; <see cref="IsBroken"/> turns
///   true, and values produced since the failure must be treated as garbage (a data-parallel trainer
///   drops its state and reloads the last checkpoint). A broken group is never reused: form a new one.
/// </summary>
public interface ICollective : IDisposable
{
    /// <summary>"tcp" or "nccl".</summary>
    string Backend { get; }

    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Reduces a contiguous tensor across the ranks, in place.</summary>
    void AllReduce(Tensor tensor, ReduceOp op);

    /// <summary>Reduces several contiguous tensors of one dtype as one operation, in place.</summary>
    void AllReduce(IReadOnlyList<Tensor> tensors, ReduceOp op);

    /// <summary>Copies <paramref name="tensor"/> of rank <paramref name="root"/> into the same tensor on every other rank.</summary>
    void Broadcast(Tensor tensor, int root);

    /// <summary>Returns on every rank only once every rank has called it (and its queued device work is done).</summary>
    void Barrier();

    /// <summary>
    /// Breaks the group at once, from any thread: blocked calls on this rank return with a
    /// <see cref="CollectiveException"/>, device work waiting on peers is cancelled, peers see a failure.
    /// Idempotent.
    /// </summary>
    void Abort(string reason);

    bool IsBroken { get; }

    /// <summary>Why the group broke (null while healthy).</summary>
    string? FailureReason { get; }

    /// <summary>Throws <see cref="CollectiveException"/> when the group is broken.</summary>
    void ThrowIfBroken();
}

/// <summary>A collective failed (peer lost, timeout, abort, backend error). The group is unusable.</summary>
public sealed class CollectiveException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The bytes every rank needs to join one group: NCCL's 128-byte unique id, or the TCP rendezvous address.
/// Created once per group generation (by rank 0's process for NCCL, which must be reachable by all ranks),
/// handed to every rank by the control plane (the actor system), small enough for any message.
/// </summary>
public sealed record CollectiveGroupId(string Backend, byte[] Bytes)
{
    public bool Equals(CollectiveGroupId? other) =>
        other is not null && Backend == other.Backend && Bytes.AsSpan().SequenceEqual(other.Bytes);

    public override int GetHashCode() => HashCode.Combine(Backend, Bytes.Length, Bytes.Length > 0 ? Bytes[^1] : 0);

    public string ToHex() => Backend + ":" + Convert.ToHexString(Bytes);

    /// <summary>Parses <see cref="ToHex"/> output (command lines of spawned ranks).</summary>
    public static CollectiveGroupId ParseHex(string text)
    {
        int colon = text.IndexOf(':');
        if (colon <= 0)
            throw new FormatException($"'{text}' is not a collective group id (expected backend:hex).");
        try
        {
            return new CollectiveGroupId(text[..colon], Convert.FromHexString(text[(colon + 1)..]));
        }
        catch (FormatException e)
        {
            throw new FormatException($"'{text}' is not a collective group id: {e.Message}", e);
        }
    }
}

/// <summary>Creates group ids and joins groups for one backend; what the actor layer is given.</summary>
public interface ICollectiveFactory
{
    string Backend { get; }

    /// <summary>Called in the process of the member that will be rank 0 (NCCL runs its bootstrap root there).</summary>
    CollectiveGroupId CreateGroupId();

    /// <summary>Joins the group; blocks until every rank has joined or the join timeout passes.</summary>
    /// <param name="device">The device this rank's tensors live on (its CUDA index for NCCL).</param>
    ICollective Join(CollectiveGroupId id, int rank, int worldSize, Device device);
}
