using System.CommandLine;

namespace LiteVae.Host.Commands;

/// <summary>The one list of CLI verbs; each verb lives in its own file.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return DoctorCommand.Create();
        yield return WeightsCommand.Create();
        yield return StatusCommand.Create();
        yield return AuditCommand.Create();
        yield return EvalCommand.Create();
        yield return CheckpointCommand.Create();
        yield return StopCommand.Create();
        yield return InspectCommand.Create();
        yield return EncodeCommand.Create();
        yield return DecodeCommand.Create();
        yield return ReconstructCommand.Create();
        yield return ConvertCommand.Create();
        yield return LatentStatsCommand.Create();
        yield return TrainCommand.Create();
        yield return NodeCommand.Create();
        yield return LaunchCommand.Create();
        yield return ShardsCommand.Create();
        yield return CompareCommand.Create();
        yield return CertsCommand.Create();
    }
}
