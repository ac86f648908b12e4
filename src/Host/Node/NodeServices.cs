using LiteVae.Actors.Coordination;
using LiteVae.Actors.Data;
using LiteVae.Actors.Eval;
using LiteVae.Actors.Training;

namespace LiteVae.Host.Node;

/// <summary>
/// The composition root's answers to what each role needs: the real trainer, data pipeline, evaluation
/// and checkpoint store (see <see cref="RealNodeServices"/>). <see cref="Plan"/> is only needed on
/// coordinator nodes (it reads the experiment config).
/// </summary>
public sealed record NodeServices(
    ICheckpointStore Store, TrainingEngineFactory Engine, DataPipelineFactory Pipeline, EvalJobFactory EvalJobs, Func<RunPlan>? Plan);
