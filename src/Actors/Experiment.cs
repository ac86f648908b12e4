using LiteVae.Data.Config;
using LiteVae.Model.Configs;
using LiteVae.Model.Discriminators;
using LiteVae.Model.Losses;
using LiteVae.Model.Training;

namespace LiteVae.Actors;

/// <summary>trainer { … } besides the numerics in <see cref="TrainerOptions"/>.</summary>
/// <param name="CpuThreads">libtorch intra-op threads on the CPU; 0 keeps libtorch's default.</param>
public sealed record RunSettings(long MaxSteps, int LogEvery, string Device, string? InitFrom, int CpuThreads = 0);

/// <summary>checkpoint { … }</summary>
public sealed record CheckpointSettings(long EverySteps, int KeepLast, bool KeepBest);

/// <summary>
/// eval { … }: the held-out evaluation at step 0 and at every checkpoint (the `litevae eval` job on the
/// first <paramref name="Images"/> eval-data images). <paramref name="Lpips"/>: vgg, alex or none (unavailable
/// without its weight file); <paramref name="Rfid"/>: off by default (on a few hundred images rFID is strongly
/// biased, and its 2048-d matrix square root costs about a minute on a CPU).
/// </summary>
public sealed record EvalSettings(int Images, int GridImages, bool UseEma, string Lpips = "vgg", bool Rfid = false);

/// <summary>Which LPIPS backbone the perceptual term uses; None switches the term off.</summary>
public enum PerceptualNet
{
    Vgg,
    Alex,
    None,
}

/// <summary>A whole experiment config, validated: everything `litevae train` needs.</summary>
public sealed record ExperimentConfig(
    string Name,
    AutoencoderConfig Model,
    DiscriminatorConfig Discriminator,
    DataConfig Data,
    DataConfig? EvalData,
    RunSettings Run,
    TrainerOptions Trainer,
    LossConfig Loss,
    PerceptualNet Perceptual,
    CheckpointSettings Checkpoint,
    EvalSettings Eval,
    string ResolvedText);

/// <summary>
/// Turns an experiment's HOCON text (as the Coordinator hands it to every node) into a validated
/// <see cref="ExperimentConfig"/>; the Host's config binder. <paramref name="source"/> names the text in errors.
/// </summary>
public delegate ExperimentConfig ExperimentBinder(string hocon, string source);
