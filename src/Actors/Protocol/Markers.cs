namespace LiteVae.Actors.Protocol;

/// <summary>
/// Every message that may cross nodes. They are all bound to <see cref="Serialization.LiteVaeSerializer"/>,
/// which gives each one a frozen short manifest.
/// </summary>
public interface ILiteVaeMessage;

/// <summary>A message that starts work; carries the W3C trace context of whoever asked (null when untraced).</summary>
public interface ITraced
{
    string? TraceParent { get; }
}

/// <summary>A message that belongs to one Coordinator incarnation; stale ones are ignored by the receiver.</summary>
public interface IWithCoordinatorId
{
    string CoordinatorId { get; }
}
