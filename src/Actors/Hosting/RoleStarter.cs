using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Event;
using Akka.Pattern;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Protocol;
using LiteVae.Actors.Training;

namespace LiteVae.Actors.Hosting;

/// <summary>What the trainer role needs from the Host.</summary>
/// <param name="CheckpointServer">This node's checkpoint server (the run's home copies this trainer's checkpoints from it).</param>
public sealed record TrainerRoleOptions(
    TrainerSettings Settings, TrainingEngineFactory Engine, ICheckpointStore Store, int IntakeBatches, string Dispatcher,
    TimeSpan MinBackoff, TimeSpan MaxBackoff, TimeSpan FinalCheckpointTimeout, IActorRef? CheckpointServer = null);

/// <summary>What the data role needs from the Host.</summary>
public sealed record DataRoleOptions(DataNodeSettings Settings, ExperimentBinder Bind);

/// <summary>What the eval role needs from the Host.</summary>
public sealed record EvalRoleOptions(string Node, EvalJobFactory Jobs, string Dispatcher, TimeSpan Heartbeat, Transfer.StorageSettings? Storage = null);

/// <summary>What the coordinator role needs from the Host.</summary>
public sealed record CoordinatorRoleOptions(RunPlan Plan, ICheckpointStore Store, CoordinatorSettings Settings);

/// <summary>The actors each role starts on a node, with their fixed names (kebab-case paths).</summary>
public static class RoleStarter
{
    public const string CoordinatorManager = "coordinator", CoordinatorProxy = "coordinator-proxy", DataNodeName = "data-node",
        Intake = "intake", CheckpointerName = "checkpointer", Trainer = "trainer", TrainerChild = "device-trainer",
        EvaluatorName = "evaluator";

    /// <summary>Every node: the proxy to the Coordinator singleton (wherever it runs).</summary>
    public static IActorRef StartCoordinatorProxy(ActorSystem system)
    {
        // Creating a materializer registers Akka.Streams' StreamRef serializer: without it a node cannot
        // read the batch streams other nodes offer.
        Akka.Streams.ActorMaterializer.Create(system).Dispose();
        return system.ActorOf(ClusterSingletonProxy.Props($"/user/{CoordinatorManager}",
            ClusterSingletonProxySettings.Create(system).WithRole(ClusterRoles.Coordinator).WithBufferSize(10_000)), CoordinatorProxy);
    }

    /// <summary>Every node: serves the checkpoints on this node's disk to nodes that do not share it (eval nodes, a
    /// replacement trainer, the run's home copying a trainer's checkpoint).</summary>
    public static IActorRef StartCheckpointServer(ActorSystem system, int chunkBytes) =>
        system.ActorOf(Transfer.CheckpointServer.Props(chunkBytes), Transfer.CheckpointServer.Name);

    /// <summary>Every node: the gateway that CLI clients talk to.</summary>
    /// <param name="authorizer">Who may send commands (mutual TLS, or the run token on loopback).</param>
    public static IActorRef StartGateway(ActorSystem system, IActorRef coordinator, Security.CommandAuthorizer authorizer) =>
        system.ActorOf(Gateway.Gateway.Props(coordinator, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5), authorizer)
            .WithMailbox(GatewayMailbox), Gateway.Gateway.Name);

    /// <summary>A bounded mailbox for the gateway (HOCON in base.conf): a flood of commands is dropped, not queued without end.</summary>
    public const string GatewayMailbox = "litevae.gateway-mailbox";

    /// <summary>Coordinator nodes: the singleton manager (the oldest such node runs the Coordinator).</summary>
    public static IActorRef StartCoordinator(ActorSystem system, CoordinatorRoleOptions o) =>
        system.ActorOf(ClusterSingletonManager.Props(Coordinator.Props(o.Plan, o.Store, o.Settings), PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(system).WithRole(ClusterRoles.Coordinator)), CoordinatorManager);

    public static IActorRef StartDataNode(ActorSystem system, DataRoleOptions o, IActorRef coordinator) =>
        system.ActorOf(DataNode.Props(o.Settings, o.Bind, coordinator), DataNodeName);

    /// <summary>
    /// Trainer nodes: the intake, the Checkpointer, and the DeviceTrainer on its pinned dispatcher under a
    /// BackoffSupervisor (a crash restarts it after a growing pause; the fresh trainer resumes from the last
    /// checkpoint). CoordinatedShutdown writes a final checkpoint before the node leaves.
    /// </summary>
    public static IActorRef StartTrainer(ActorSystem system, TrainerRoleOptions o, IActorRef coordinator)
    {
        var buffer = new IntakeBuffer(o.IntakeBatches);
        var intake = system.ActorOf(BatchIntake.Props(buffer), Intake);
        var checkpointer = system.ActorOf(Checkpointer.Props(o.Store, coordinator, o.CheckpointServer), CheckpointerName);
        var child = DeviceTrainer.Props(o.Settings, o.Engine, buffer, intake, checkpointer, coordinator).WithDispatcher(o.Dispatcher);
        var trainer = system.ActorOf(BackoffSupervisor.Props(
            Backoff.OnFailure(child, TrainerChild, o.MinBackoff, o.MaxBackoff, 0.2, -1).WithAutoReset(TimeSpan.FromMinutes(2))), Trainer);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "final-checkpoint", async () =>
        {
            try
            {
                var reply = await trainer.Ask<object>(FinalCheckpoint.Instance, o.FinalCheckpointTimeout);
                system.Log.Info("final checkpoint before leaving: {0}", reply);
                if (reply is CheckpointEvents.CheckpointSaved saved && o.CheckpointServer is not null)
                {
                    // Without a shared disk the run's home copies it from this node: stay until it has (or says it cannot).
                    try
                    {
                        var stored = await checkpointer.Ask<CheckpointEvents.CheckpointStored>(new Checkpointer.AwaitStored(saved.Step), o.FinalCheckpointTimeout);
                        system.Log.Info("final checkpoint in the run's directory: {0}", stored.Path ?? stored.Error);
                    }
                    catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
                    {
                        system.Log.Warning("the run's directory did not confirm the final checkpoint (step {0}) in {1}; it is on this node: {2}",
                            saved.Step, o.FinalCheckpointTimeout, saved.Path);
                    }
                }
            }
            catch (Exception e)
            {
                system.Log.Warning("final checkpoint before leaving failed: {0}", e.Message);
            }
            buffer.Close();
            return Akka.Done.Instance;
        });
        return trainer;
    }

    public static IActorRef StartEvaluator(ActorSystem system, EvalRoleOptions o, IActorRef coordinator) =>
        system.ActorOf(Evaluator.Props(o.Node, o.Jobs, coordinator, o.Heartbeat, o.Storage).WithDispatcher(o.Dispatcher), EvaluatorName);
}
