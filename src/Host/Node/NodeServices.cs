using LiteVae.Actors;
using LiteVae.Actors.Coordination;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Training;

namespace LiteVae.Host.Node;

/// <summary>
/// What each role needs from the composition root: the checkpoint store, the trainer's engine, the experiment
/// binder, the evaluation jobs, and (coordinator nodes only: it reads the experiment config) the run plan.
/// </summary>
public sealed record NodeServices(
    ICheckpointStore Store, TrainingEngineFactory Engine, ExperimentBinder Bind, EvalJobFactory EvalJobs, Func<RunPlan>? Plan);
