using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Serialization;

/// <summary>
/// The frozen wire names of every cross-node message. A manifest, once shipped, never changes meaning: add new
/// ones, never renumber or reuse a retired one (d4, d6, d7, t5, t6, tD: the per-shard leases of earlier versions).
/// </summary>
public static class Manifests
{
    public static readonly IReadOnlyDictionary<Type, string> ByType = new Dictionary<Type, string>
    {
        // data (d*)
        [typeof(DataProtocol.DataNodeHeartbeat)] = "d1",
        [typeof(DataProtocol.DataPlan)] = "d2",
        [typeof(DataProtocol.RequestLease)] = "d3",
        [typeof(DataProtocol.NoLeaseAvailable)] = "d5",
        [typeof(DataProtocol.DataStreamBroken)] = "d8",
        [typeof(DataProtocol.OfferBatchStream)] = "d9",
        [typeof(BatchChunk)] = "dB",
        [typeof(DataProtocol.BatchLeased)] = "dC",
        // trainer (t*) and checkpoints (k*)
        [typeof(TrainerProtocol.RegisterTrainer)] = "t1",
        [typeof(TrainerProtocol.StartTraining)] = "t2",
        [typeof(TrainerProtocol.TrainerReady)] = "t3",
        [typeof(TrainerProtocol.BeginSteps)] = "t4",
        [typeof(TrainerProtocol.TrainerProgress)] = "t7",
        [typeof(TrainerProtocol.TrainingFinished)] = "t8",
        [typeof(TrainerProtocol.PauseTraining)] = "t9",
        [typeof(TrainerProtocol.ResumeTraining)] = "tA",
        [typeof(TrainerProtocol.SaveCheckpointNow)] = "tB",
        [typeof(TrainerProtocol.StopTraining)] = "tC",
        [typeof(TrainerProtocol.BatchTrained)] = "tE",
        // data-parallel group (g*)
        [typeof(GroupProtocol.CreateGroupAddresses)] = "g1",
        [typeof(GroupProtocol.GroupAddressesCreated)] = "g2",
        [typeof(GroupProtocol.JoinTrainerGroup)] = "g3",
        [typeof(GroupProtocol.TrainerGroupJoined)] = "g4",
        [typeof(GroupProtocol.AbortTrainerGroup)] = "g5",
        [typeof(CheckpointEvents.CheckpointSaved)] = "k1",
        [typeof(CheckpointEvents.CheckpointFailed)] = "k2",
        [typeof(CheckpointEvents.CheckpointStored)] = "k3",
        // eval (e*)
        [typeof(EvalProtocol.EvaluatorHeartbeat)] = "e1",
        [typeof(EvalProtocol.RunEvaluation)] = "e2",
        [typeof(EvalProtocol.EvaluationStarted)] = "e3",
        [typeof(EvalProtocol.EvaluationFinished)] = "e4",
        [typeof(EvaluationStatus)] = "e5",
        // checkpoint transfer between nodes (x*)
        [typeof(TransferProtocol.GetManifest)] = "x1",
        [typeof(TransferProtocol.Manifest)] = "x2",
        [typeof(TransferProtocol.GetChunk)] = "x3",
        [typeof(TransferProtocol.Chunk)] = "x4",
        [typeof(TransferProtocol.Release)] = "x5",
        [typeof(TransferProtocol.Refused)] = "x6",
        // client commands (c*)
        [typeof(ClientProtocol.GetClusterStatus)] = "c1",
        [typeof(ClientProtocol.ClusterStatus)] = "c2",
        [typeof(ClientProtocol.RequestEvaluation)] = "c3",
        [typeof(ClientProtocol.EvaluationAccepted)] = "c4",
        [typeof(ClientProtocol.GetEvaluation)] = "c5",
        [typeof(ClientProtocol.RequestCheckpoint)] = "c6",
        [typeof(ClientProtocol.RequestStop)] = "c7",
        [typeof(ClientProtocol.RunStopped)] = "c8",
        [typeof(ClientProtocol.CommandRejected)] = "c9",
        [typeof(AuthorizedCommand)] = "cA",
    };

    public static readonly IReadOnlyDictionary<string, Type> ByManifest = ByType.ToDictionary(kv => kv.Value, kv => kv.Key);
}
